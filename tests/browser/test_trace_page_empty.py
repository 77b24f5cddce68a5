"""The trace page of a gateway that has no tracing config and no traffic yet: each view says
so instead of failing, and the page still needs the token before it shows anything."""

import asyncio
import pathlib
from collections.abc import AsyncIterator

import pytest

from gatetrace.gateway import config, server
from tests.browser import chromium

pytestmark = pytest.mark.timeout(60)

TOKEN = "empty-gateway-token"


@pytest.fixture
async def admin_url() -> AsyncIterator[str]:
    settings = config.parse_config(
        {"service": "edge", "listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}}
    )
    gateway = server.Gateway(settings, token=TOKEN)
    await gateway.start()
    try:
        yield gateway.admin_url
    finally:
        await gateway.stop(2.0)


def _drive(page: chromium.Page, admin_url: str) -> None:
    page.driver.get(admin_url + "/ui/#/config")
    page.visible("#login-form")
    assert page.find("#view-config").is_displayed() is False
    page.find("#token").send_keys(TOKEN)
    page.find("#login-form button[type=submit]").click()
    # straight to the view the fragment asked for
    page.until_text("#config-status", "No tracing config is loaded yet.")
    assert page.find("#config-body").text == ""
    page.shot("empty-config")
    page.find('#nav a[data-view="traces"]').click()
    page.until_text("#traces-status", "No traces yet")
    assert page.all("#traces tbody tr") == []
    assert page.all("#f-service option") == []
    page.find('#nav a[data-view="dependencies"]').click()
    page.until_text("#deps-status", "No calls between services recorded yet.")
    assert page.all("#deps-graph svg") == []
    # a trace id that is not stored: the query API's 404 message, not a broken page
    page.driver.get(admin_url + "/ui/#/trace/0123456789abcdef0123456789abcdef")
    page.until_text("#trace-summary", "404")
    assert "0123456789abcdef0123456789abcdef not found" in page.find("#trace-summary").text
    assert page.all("#waterfall .row") == []
    assert page.console_errors() == []


async def test_empty_gateway_views(admin_url: str, tmp_path: pathlib.Path) -> None:
    chromium.require_or_skip()

    def run() -> None:
        with chromium.headless(tmp_path / "profile") as driver:
            _drive(chromium.Page(driver), admin_url)

    await asyncio.to_thread(run)
