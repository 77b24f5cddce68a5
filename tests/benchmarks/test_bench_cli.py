"""Every benchmark with options answers ``--help`` (argparse %-formats help texts: a ``%``
in a mode name such as ``100%`` broke ``bench_gateway`` and ``bench_otel_proxy``)."""

import pathlib
import subprocess
import sys

import pytest

_BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
_MODULES = sorted(
    p.stem
    for p in _BENCHMARKS.glob("*.py")
    if "argparse" in p.read_text() and p.stem not in ("common", "__main__")
)


@pytest.mark.parametrize("module", _MODULES)
def test_help(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--help"],
        cwd=_BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
