"""The trace page on the read-only query port (``queryApi.listen``): no login, traces and
dependencies straight away, no config view and no log out (that port serves no admin
route), and the admin port's page still asks for the token."""

import asyncio
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gatetrace.gateway import config, server
from tests import loopback
from tests.browser import chromium

pytestmark = pytest.mark.timeout(60)

TOKEN = "read-only-test-token"


@pytest.fixture
async def gateway() -> AsyncIterator[server.Gateway]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    upstream = web.Application()
    upstream.router.add_get("/{tail:.*}", ok)
    async with loopback.serving(upstream) as up:
        settings = config.parse_config(
            {
                "service": "edge",
                "listen": "127.0.0.1:0",
                "admin": {"listen": "127.0.0.1:0"},
                "queryApi": {"listen": "127.0.0.1:0"},
                "routes": [{"name": "users", "prefix": "/api/users", "upstream": up}],
                "tracing": {"sampling": {"sampler": {"type": "const", "decision": True}}},
            }
        )
        gw = server.Gateway(settings, token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                for user in ("1", "2"):
                    assert (await http.get(f"{gw.proxy_url}/api/users/{user}")).status == 200
            for _ in range(100):
                if len(gw.store) >= 4:
                    break
                await asyncio.sleep(0.05)
            yield gw
        finally:
            await gw.stop(2.0)


def _drive(page: chromium.Page, query_url: str, admin_url: str) -> None:
    page.driver.get(query_url + "/ui/#/config")  # no config view here: the traces instead
    page.until(lambda: len(page.all("#traces tbody tr")) == 2)
    assert page.find("#login-form").is_displayed() is False
    assert page.find("#view-config").is_displayed() is False
    assert page.find('#nav a[data-view="config"]').is_displayed() is False
    assert page.find("#logout").is_displayed() is False
    assert page.stored_token() is None
    page.find('#nav a[data-view="dependencies"]').click()
    page.until(lambda: len(page.all("#deps tbody tr")) == 1)
    assert page.find("#deps tbody tr").text.split() == ["edge", "edge", "2"]
    page.shot("read-only")
    assert page.console_errors() == []
    page.driver.get(admin_url + "/ui/")
    page.visible("#login-form")
    assert page.all("#traces tbody tr") == []


async def test_the_query_port_page_needs_no_token(
    gateway: server.Gateway, tmp_path: pathlib.Path
) -> None:
    chromium.require_or_skip()
    assert gateway.query_url is not None

    def run() -> None:
        with chromium.headless(tmp_path / "profile") as driver:
            _drive(chromium.Page(driver), str(gateway.query_url), gateway.admin_url)

    await asyncio.to_thread(run)
