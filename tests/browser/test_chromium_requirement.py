"""The browser test's gate: a missing Chromium skips with the reason, unless CI demands it."""

import pathlib
import subprocess

import pytest

from tests.browser import chromium


def _without_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setattr(chromium, "CHROMIUM", tmp_path / "no-chromium")


def test_missing_browser_skips_with_the_installer_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    _without_browser(monkeypatch, tmp_path)
    monkeypatch.delenv(chromium.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="install-chromium") as skipped:
        chromium.require_or_skip()
    assert str(tmp_path / "no-chromium") in str(skipped.value)


def test_missing_browser_fails_when_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    _without_browser(monkeypatch, tmp_path)
    monkeypatch.setenv(chromium.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="GATETRACE_E2E_REQUIRE is set"):
        chromium.require_or_skip()


def test_installer_does_nothing_when_the_browser_is_there(tmp_path: pathlib.Path) -> None:
    chromium.require_or_skip()
    # an empty PATH: any attempt to reach apt-get or sudo would fail the script
    done = subprocess.run(
        ["/bin/bash", str(chromium.INSTALLER)],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("chromium: ")
