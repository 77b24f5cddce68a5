"""The pod venv: the wheel built from the checkout, installed in a venv of its own.

What a pod runs is what the image would run: `pip wheel` of a copy of the checkout's
pyproject.toml, README.md and operator/ (as the Dockerfile does), with
SOURCE_DATE_EPOCH set so the same sources give the same wheel, installed with its
dependencies into `$GATETRACE_PEERS_DIR/podvenv-<wheel sha256>/`. Dependencies are
pinned to the versions of the development venv (pip's cache serves them); a second
run with unchanged sources only rebuilds the wheel (a few seconds).
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import cache

REPO = Path(__file__).resolve().parents[2]
_KEEP_SECONDS = 3 * 24 * 3600


def _run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def build_wheel(out: Path) -> Path:
    """The project's wheel, built from a copy of the checkout's sources into `out`."""

    with tempfile.TemporaryDirectory(prefix="gatetrace-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / name)
        shutil.copytree(
            REPO / "operator", src / "operator",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        )  # fmt: skip
        env = dict(os.environ) | {"SOURCE_DATE_EPOCH": "315532800", "PIP_NO_INPUT": "1"}
        _run(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(src),
            env=env,
        )
    [wheel] = out.glob("gatetrace-*.whl")
    return wheel


def _constraints(path: Path) -> Path:
    frozen = _run(sys.executable, "-m", "pip", "freeze", "--exclude-editable")
    path.write_text("\n".join(line for line in frozen.splitlines() if "==" in line) + "\n")
    return path


def pod_venv() -> Path:
    """The venv holding the current checkout's wheel (built once per wheel hash)."""
    with tempfile.TemporaryDirectory(prefix="gatetrace-wheel-out-") as tmp:
        wheel = build_wheel(Path(tmp))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
        dest = cache.peers_dir() / f"podvenv-{digest}"
        if (dest / ".complete").is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with (dest.parent / f"podvenv-{digest}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (dest / ".complete").is_file():
                _install(wheel, dest)
    _prune(dest)
    return dest


def _install(wheel: Path, dest: Path) -> None:
    """Installs into `dest` itself (a venv's scripts name its path in their #! line);
    `.complete` is written last, so a broken attempt is redone."""
    shutil.rmtree(dest, ignore_errors=True)
    started = time.monotonic()
    base = getattr(sys, "_base_executable", sys.executable)
    _run(base, "-m", "venv", str(dest))
    constraints = _constraints(dest / "constraints.txt")
    _run(str(dest / "bin" / "pip"), "install", "-q", "-c", str(constraints), str(wheel))
    (dest / "wheel").write_text(wheel.name + "\n")
    (dest / "build-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
    (dest / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _prune(keep: Path) -> None:
    """Removes pod venvs of other wheels unused for a few days."""
    for other in keep.parent.glob("podvenv-*"):
        if other != keep and other.is_dir() and time.time() - other.stat().st_mtime > _KEEP_SECONDS:
            shutil.rmtree(other, ignore_errors=True)
