"""The closing line of a test run: what was skipped, and the command that enables it."""

import os
import pathlib
import subprocess
import sys

from tests import skipsummary

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_tool_skips_are_counted_with_the_command_that_installs_them() -> None:
    reasons = [
        "Skipped: helm is not built: run e2e/peers/build-all (CI does)",
        "Skipped: helm is not built: run e2e/peers/build-all (CI does)",
        "Skipped: headless Chromium unavailable (missing /usr/bin/chromium); run x",
        "Skipped: checked by the API server's routing, not the schema",
    ]
    assert skipsummary.skip_line(reasons) == (
        "SKIPPED 4 tests (1 checked by the API server's routing, not the schema, "
        "1 needs headless Chromium, 2 needs helm); "
        "`make test-tools` installs helm and headless Chromium so they run"
    )


def test_other_skips_are_listed_without_a_command_and_none_says_nothing() -> None:
    line = skipsummary.skip_line(["Skipped: not on this platform"])
    assert line == "SKIPPED 1 tests (1 not on this platform)"
    assert skipsummary.skip_line([]) is None


def test_the_makefile_has_the_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = skipsummary.ENABLE_COMMAND.removeprefix("make ")
    assert f"\n{target}:" in makefile
    recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    assert "e2e/peers/build-all helm" in recipe
    assert "tests/browser/install-chromium" in recipe


def test_a_run_ends_with_the_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_ok():\n    pass\n"
        "def test_needs_helm():\n    pytest.skip('helm is not built: run e2e/peers/build-all')\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.skipsummary", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.rstrip().splitlines()[-1]
    assert last.startswith("SKIPPED 1 tests (1 needs helm); `make test-tools`"), done.stdout
