"""Headless Chromium for the browser tests: Debian's chromium + chromedriver driven by
selenium, a fresh profile per test, no network beyond 127.0.0.1.

``install-chromium`` (next to this file) installs both; CI runs it and sets
``GATETRACE_E2E_REQUIRE``, which turns a missing browser from a skip into a failure.
"""

import contextlib
import os
import pathlib
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome import service as chrome_service

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
REQUIRE_ENV = "GATETRACE_E2E_REQUIRE"
INSTALLER = pathlib.Path(__file__).with_name("install-chromium")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--window-size=1400,1000",
)


def _missing() -> list[str]:
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]


def require_or_skip() -> None:
    """Skip when the browser is missing, unless ``$GATETRACE_E2E_REQUIRE`` demands it."""
    missing = _missing()
    if not missing:
        return
    message = f"headless Chromium unavailable (missing {', '.join(missing)}); run {INSTALLER}"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{message} (${REQUIRE_ENV} is set)")
    pytest.skip(message)


@contextlib.contextmanager
def headless(profile: pathlib.Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in ``profile``, quit on exit."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # with an explicit driver path selenium never runs its manager (no download)
    driver = webdriver.Chrome(
        options=options, service=chrome_service.Service(executable_path=str(CHROMEDRIVER))
    )
    try:
        driver.set_page_load_timeout(15)
        yield driver
    finally:
        driver.quit()
