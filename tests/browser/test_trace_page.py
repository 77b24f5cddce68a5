"""The trace page in real headless Chromium against a real gateway.

A :class:`~gatetrace.gateway.server.Gateway` on 127.0.0.1 proxies to a small traced
upstream service (its spans reach the same span store, as a service reporting to the
same backend would); the tracing config arrives through ``PUT /admin/v1/tracing`` like
the operator's. Real requests go through the proxy, one of them failing with a 500 and
carrying baggage and a hostile header value. Chromium then logs in, lists, filters and
opens traces, reads the waterfall and span details, the dependencies and the config, and
logs out; a refused token returns to the login form. Screenshots go to
``artifacts/screenshots/``.
"""

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common import exceptions as selenium_errors
from selenium.webdriver.common.by import By
from selenium.webdriver.support import select

from gatetrace import runtime
from gatetrace.gateway import config, server
from gatetrace.gateway import store as _store
from gatetrace.runtime.propagation import base as prop_base
from gatetrace.runtime.propagation import composite
from gatetrace.runtime.sampling import const, parentbased
from tests import loopback
from tests.browser import chromium

pytestmark = pytest.mark.timeout(90)

TOKEN = "browser-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = '<img src=x onerror="window.__pwned=1">&amp;'
"""A header value the gateway copies into a tag: the page must show it as text."""

TRACING = {
    "sampling": {"sampler": {"type": "const", "decision": True}},
    "baggage": {"allow": ["tenant-id"], "tagKeys": ["tenant-id"]},
    "headerTags": [{"header": "x-request-id", "tag": "http.request_id"}],
    "reporters": [{"type": "memory"}],
    "batching": {"flushIntervalMs": 20},
}
SOURCES = [{"namespace": "shop", "name": "checkout", "generation": 3, "level": "workload"}]
REVISION = 7


class _StoreProcessor:
    """The upstream's finished spans go to the gateway's store (one shared backend)."""

    store: _store.SpanStore | None = None

    def on_end(self, span: runtime.Span) -> None:
        assert self.store is not None, "connect the processor to the gateway's store first"
        self.store.add([span])


def _users_app(processor: _StoreProcessor) -> web.Application:
    """The ``users`` service: a SERVER span per request continuing the gateway's trace,
    a child span for its database call (with a log), and a 500 on ``/api/users/fail``."""
    tracer = runtime.Tracer(
        runtime.Resource("users", (("service.instance.id", "users-1"),)),
        sampler=parentbased.ParentBasedSampler(const.ConstSampler(True)),
        processor=processor,
    )
    propagator = composite.build_propagator(["tracecontext"], ["tracecontext"])
    getter = prop_base.MultiDictGetter()

    async def user(request: web.Request) -> web.Response:
        parent = propagator.extract(request.headers, getter).context
        failing = request.match_info["user"] == "fail"
        span = tracer.start_span(
            "GET /api/users/{user}",
            kind=runtime.SpanKind.SERVER,
            parent=parent,
            tags={"http.request.method": "GET", "url.path": request.path},
        )
        with runtime.use_span(span):
            query = tracer.start_span(
                "SELECT users", kind=runtime.SpanKind.CLIENT, tags={"db.system": "postgresql"}
            )
            await asyncio.sleep(0.004)
            query.log({"event": "rows", "count": 0 if failing else 1})
            query.finish()
            await asyncio.sleep(0.002)
        status = 500 if failing else 200
        span.set_tag("http.response.status_code", status)
        if failing:
            span.set_status(runtime.StatusCode.ERROR, "user lookup failed")
        span.finish()
        return web.json_response({"user": request.match_info["user"]}, status=status)

    app = web.Application()
    app.router.add_get("/api/users/{user}", user)
    return app


@dataclass(frozen=True)
class Site:
    admin_url: str
    error_trace: str
    ok_traces: int


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    return await loopback.start(app, access_log=None)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A gateway with traffic in its store and revision 7 of the config applied."""
    processor = _StoreProcessor()
    runner, upstream_url = await _start(_users_app(processor))
    settings = config.parse_config(
        {
            "service": "edge",
            "listen": "127.0.0.1:0",
            "admin": {"listen": "127.0.0.1:0"},
            "routes": [{"name": "users", "prefix": "/api/users", "upstream": upstream_url}],
        }
    )
    gateway = server.Gateway(settings, token=TOKEN, drain_seconds=0.05)
    processor.store = gateway.store  # both services report to one backend
    await gateway.start()
    try:
        async with aiohttp.ClientSession() as http:
            put = await http.put(
                gateway.admin_url + "/admin/v1/tracing",
                json={"revision": REVISION, "config": TRACING, "sources": SOURCES},
                headers=AUTH,
            )
            assert put.status == 200, await put.text()
            for user in ("1", "2", "3"):
                ok = await http.get(f"{gateway.proxy_url}/api/users/{user}")
                assert ok.status == 200
            failed = await http.get(
                f"{gateway.proxy_url}/api/users/fail",
                headers={"baggage": "tenant-id=acme", "x-request-id": HOSTILE},
            )
            assert failed.status == 500
            error_trace = failed.headers["X-Trace-Id"]
        await _until(
            lambda: len(gateway.store.trace(runtime.parse_trace_id(error_trace) or 0)) >= 4
        )
        await _until(lambda: len(gateway.store) >= 16)
        yield Site(gateway.admin_url, error_trace, ok_traces=3)
    finally:
        await gateway.stop(2.0)
        await runner.cleanup()


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("spans did not reach the store in time")


# -- driving the page (blocking selenium calls, run in a worker thread) -------------------------


def _login(page: chromium.Page, admin_url: str) -> None:
    page.driver.get(admin_url + "/ui/")
    page.visible("#login-form")
    assert page.find("#nav").is_displayed() is False
    page.find("#token").send_keys("not-the-token")
    page.find("#login-form button[type=submit]").click()
    page.until_text("#login-error", "refused")
    assert page.stored_token() is None
    page.shot("0-login-refused")
    page.find("#token").clear()
    page.find("#token").send_keys(TOKEN)
    page.find("#login-form button[type=submit]").click()
    page.visible("#view-traces")
    assert page.stored_token() == TOKEN
    assert TOKEN not in page.driver.current_url
    assert page.script("return document.cookie") == ""


def _trace_list(page: chromium.Page, site: Site) -> None:
    page.until(lambda: len(page.all("#traces tbody tr")) == site.ok_traces + 1)
    assert page.find("#f-service").get_attribute("value") == "edge"
    operations = [o.text for o in page.all("#f-operation option")]
    assert operations == ["all", "GET", "GET /api/users"]  # the client span is "GET"
    assert len(page.all("#traces tbody tr.err")) == 1
    page.shot("1-traces")
    # another service: its own operations; one of them finds the traces it took part in
    select.Select(page.find("#f-service")).select_by_value("users")
    page.until(lambda: "SELECT users" in page.find("#f-operation").text)
    assert [o.text for o in page.all("#f-operation option")] == [
        "all",
        "GET /api/users/{user}",
        "SELECT users",
    ]
    select.Select(page.find("#f-operation")).select_by_value("SELECT users")
    page.find("#filters button[type=submit]").click()
    page.until_text("#traces-status", f"{site.ok_traces + 1} traces")
    assert all("edge: GET /api/users" in row.text for row in page.all("#traces tbody tr"))
    select.Select(page.find("#f-service")).select_by_value("edge")
    page.until(lambda: "SELECT users" not in page.find("#f-operation").text)
    # min duration: nothing took ten seconds
    page.find("#f-min").send_keys("10s")
    page.find("#filters button[type=submit]").click()
    page.until_text("#traces-status", "0 traces")
    assert page.all("#traces tbody tr") == []
    # a bad duration is reported with the parameter's name, not swallowed
    page.find("#f-min").clear()
    page.find("#f-min").send_keys("soon")
    page.find("#filters button[type=submit]").click()
    page.until_text("#traces-status", "minDuration")
    page.find("#f-min").clear()
    # errors only: just the failed request
    page.find("#f-errors").click()
    page.find("#filters button[type=submit]").click()
    page.until_text("#traces-status", "1 trace")
    rows = page.all("#traces tbody tr")
    assert len(rows) == 1
    assert rows[0].get_attribute("data-trace-id") == site.error_trace
    # the gateway's server and client spans and the users server span are errors
    assert "3 errors 500" in rows[0].text
    page.shot("2-errors-only")


def _trace_view(page: chromium.Page, site: Site) -> None:
    page.find("#traces tbody tr").click()
    page.visible("#view-trace")
    page.until(lambda: len(page.all("#waterfall .row.span")) == 4)
    assert page.driver.current_url.endswith(f"#/trace/{site.error_trace}")
    rows = page.all("#waterfall .row.span")
    labels = [r.find_element(By.CSS_SELECTOR, ".label").text for r in rows]
    # parent before child, indented by depth: edge server > edge client > users server > db
    assert [label.split(" ", 1)[0] for label in labels] == ["edge", "edge", "users", "users"]
    assert labels[3].endswith("SELECT users")
    pads = [
        float(r.find_element(By.CSS_SELECTOR, ".label").value_of_css_property("padding-left")[:-2])
        for r in rows
    ]
    assert pads == sorted(pads) and len(set(pads)) == 4
    # bars to scale: the root spans the whole track, each child starts no earlier than its parent
    bars = [r.find_element(By.CSS_SELECTOR, ".bar") for r in rows]
    track = rows[0].find_element(By.CSS_SELECTOR, ".track").size["width"]
    assert bars[0].size["width"] == pytest.approx(track, abs=2)
    lefts = [b.location["x"] for b in bars]
    assert lefts == sorted(lefts)
    assert all(b.size["width"] < track for b in bars[2:])
    assert all("err" in (rows[i].get_attribute("class") or "") for i in (0, 2))
    # different services, different colours
    colours = {b.value_of_css_property("background-color") for b in bars}
    assert len(colours) == 2
    # the root's details are open: tags, the baggage promoted to a tag, the hostile value as text
    details = page.visible("#span-details")
    tags = details.find_element(By.CSS_SELECTOR, "table[data-section=tags]").text
    assert "http.response.status_code 500" in tags
    assert f"http.request_id {HOSTILE}" in tags
    assert page.script("return window.__pwned") is None
    assert page.all("#span-details img") == []
    baggage = details.find_element(By.CSS_SELECTOR, "table[data-section=baggage]").text
    assert "tenant-id acme" in baggage
    assert "tenant-id" not in tags
    process = details.find_element(By.CSS_SELECTOR, "table[data-section=process]").text
    assert "service edge" in process
    page.shot("3-trace-waterfall")
    page.script(
        "arguments[0].scrollIntoView()",
        details.find_element(By.CSS_SELECTOR, "table[data-section=baggage]"),
    )
    page.shot("3b-tags-and-baggage")
    page.script("window.scrollTo(0, 0)")
    # the database span: its own tags and its log
    rows[3].click()
    page.until_text("#span-details h3", "users: SELECT users")
    details = page.find("#span-details")
    assert "db.system postgresql" in details.text
    logs = details.find_element(By.CSS_SELECTOR, "table[data-section=logs]").text
    assert "event=rows" in logs and "count=0" in logs
    assert "service.instance.id users-1" in details.text
    page.shot("4-span-details")


def _dependencies(page: chromium.Page, site: Site) -> None:
    page.find('#nav a[data-view="dependencies"]').click()
    page.until(lambda: len(page.all("#deps tbody tr")) == 3)
    calls = str(site.ok_traces + 1)
    # a parent and child in one service count too (as in Jaeger): the gateway's server
    # span -> its client span, the users service's server span -> its db span
    assert [row.text.split() for row in page.all("#deps tbody tr")] == [
        ["edge", "edge", calls],
        ["edge", "users", calls],
        ["users", "users", calls],
    ]
    nodes = [n.get_attribute("data-service") for n in page.all("#deps-graph g.node")]
    assert sorted(nodes) == ["edge", "users"]
    for key in ("edge>users", "edge>edge", "users>users"):
        edge = page.find(f'#deps-graph path.edge[data-edge="{key}"]')
        assert edge.get_attribute("marker-end") == "url(#arrow)"
    assert [t.text for t in page.all("#deps-graph text.count")] == [calls] * 3
    # the self-call stays in its caller's column: users is still one column to the right
    boxes = {
        n.get_attribute("data-service"): float(
            n.find_element("css selector", "rect").get_attribute("x") or "nan"
        )
        for n in page.all("#deps-graph g.node")
    }
    assert boxes["edge"] < boxes["users"]
    assert boxes["edge"] == min(boxes.values())
    page.shot("5-dependencies")


def _config(page: chromium.Page) -> None:
    page.find('#nav a[data-view="config"]').click()
    page.until_text('#config-meta dd[data-field="revision"]', str(REVISION))
    assert len(page.find('#config-meta dd[data-field="version"]').text) >= 8
    sources = page.find("#sources").text
    assert "checkout" in sources and "shop" in sources and "workload" in sources
    assert '"tagKeys"' in page.find("#config-body").text
    page.shot("6-config")


def _refusal_and_logout(page: chromium.Page) -> None:
    # a token the API stops accepting (rotated, say) sends the page back to the login form
    page.script("sessionStorage.setItem('gatetrace.adminToken', 'rotated-away')")
    page.find('#nav a[data-view="dependencies"]').click()
    page.visible("#login-form")
    page.until_text("#login-error", "401")
    assert page.stored_token() is None
    assert page.all("#deps tbody tr") == [] and page.find("#config-body").text == ""
    page.shot("7-refused")
    # log in again: back where we were; then log out, which forgets the token and the data
    page.find("#token").send_keys(TOKEN)
    page.find("#login-form button[type=submit]").click()
    page.until(lambda: len(page.all("#deps tbody tr")) == 3)
    page.find("#logout").click()
    page.visible("#login-form")
    assert page.stored_token() is None
    assert page.all("#deps tbody tr") == [] and page.all("#traces tbody tr") == []


def _drive(driver: webdriver.Chrome, site: Site) -> None:
    page = chromium.Page(driver)
    try:
        _login(page, site.admin_url)
        _trace_list(page, site)
        _trace_view(page, site)
        _dependencies(page, site)
        _config(page)
        _refusal_and_logout(page)
    except (AssertionError, selenium_errors.WebDriverException):
        page.shot("failure")
        raise
    # the 401s and the 400 the page provoked on purpose are logged by Chromium; nothing else
    assert page.console_errors() == []


async def test_trace_page_in_headless_chromium(site: Site, tmp_path: pathlib.Path) -> None:
    chromium.require_or_skip()

    def run() -> None:
        with chromium.headless(tmp_path / "profile") as driver:
            _drive(driver, site)

    await asyncio.to_thread(run)
