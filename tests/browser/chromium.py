"""Headless Chromium for the browser tests: Debian's chromium + chromedriver driven by
selenium, a fresh profile per test, no network beyond 127.0.0.1; :class:`Page` wraps the
driver for the trace page (waits, screenshots into ``artifacts/screenshots/``).

``install-chromium`` (next to this file) installs both; CI runs it and sets
``GATETRACE_E2E_REQUIRE``, which turns a missing browser from a skip into a failure.
"""

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome import service as chrome_service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions, wait

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
REQUIRE_ENV = "GATETRACE_E2E_REQUIRE"
INSTALLER = pathlib.Path(__file__).with_name("install-chromium")
SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

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


class Page:
    """The trace page in a driver: waits, screenshots, the stored token, console errors."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.wait = wait.WebDriverWait(driver, 10)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str) -> WebElement:
        found: WebElement = self.wait.until(
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
        )
        return found

    def until_text(self, css: str, text: str) -> None:
        self.wait.until(
            expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        )

    def until(self, check: Callable[[], Any]) -> Any:
        return self.wait.until(lambda _driver: check())

    def script(self, code: str, *args: Any) -> Any:
        return self.driver.execute_script(code, *args)

    def shot(self, name: str) -> pathlib.Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"trace-page-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        return path

    def stored_token(self) -> Any:
        return self.script("return sessionStorage.getItem('gatetrace.adminToken')")

    def console_errors(self) -> list[str]:
        """Severe console messages, but for failed API calls (the 401s/400s tests provoke)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE"
            and not (
                "Failed to load resource" in entry["message"]
                and ("/api/" in entry["message"] or "/admin/v1/" in entry["message"])
            )
        ]
