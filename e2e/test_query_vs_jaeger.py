"""The gateway's query API against the real thing: the same traces, sent by the
gateway to a real Jaeger (jaegerCollector reporter) and kept in its own store (memory
reporter), read back from both query APIs — the JSON must have Jaeger's shape."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from peers import servers

from gatetrace.gateway import config, server

pytestmark = pytest.mark.e2e

TOKEN = "e2e-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICE = "e2e-gateway"


@contextlib.asynccontextmanager
async def _upstream() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        status = 503 if request.path.endswith("/fail") else 200
        return web.json_response({"ok": status == 200}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _json(http: aiohttp.ClientSession, url: str, **kw: Any) -> Any:
    async with http.get(url, **kw) as response:
        assert response.status == 200, (url, response.status, await response.text())
        return await response.json()


def _tags(span: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


async def test_query_api_matches_jaeger(jaeger: servers.Jaeger) -> None:
    tracing = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [
            {"type": "memory"},
            {"type": "jaegerCollector", "endpoint": jaeger.collector_url},
        ],
        "batching": {"flushIntervalMs": 50},
    }
    async with _upstream() as up:
        settings = config.parse_config(
            {
                "service": SERVICE,
                "listen": "127.0.0.1:0",
                "admin": {"listen": "127.0.0.1:0"},
                "routes": [{"name": "users", "prefix": "/api/users", "upstream": up}],
                "tracing": tracing,
            }
        )
        gw = server.Gateway(settings, token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                trace_ids = []
                for path in ("/api/users/1", "/api/users/fail"):
                    async with http.get(gw.proxy_url + path) as response:
                        trace_ids.append(response.headers["X-Trace-Id"])
                theirs: dict[str, Any] = {}
                for _ in range(200):
                    for trace_id in trace_ids:
                        found = jaeger.get_trace(trace_id)
                        if found and found.get("data") and len(found["data"][0]["spans"]) == 2:
                            theirs[trace_id] = found
                    if len(theirs) == len(trace_ids):
                        break
                    await asyncio.sleep(0.1)
                assert len(theirs) == len(trace_ids), "Jaeger did not receive the traces"
                for trace_id in trace_ids:
                    ours = await _json(http, f"{gw.admin_url}/api/traces/{trace_id}", headers=AUTH)
                    _compare_trace(ours, theirs[trace_id])
                await _compare_listing(http, gw.admin_url, jaeger.query_url)
        finally:
            await gw.stop(5.0)


def _envelope(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "data"}


def _compare_trace(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert _envelope(ours) == _envelope(theirs)
    our_trace, their_trace = ours["data"][0], theirs["data"][0]
    assert set(our_trace) == set(their_trace), "trace keys"
    assert int(our_trace["traceID"], 16) == int(their_trace["traceID"], 16)
    assert len(our_trace["traceID"]) == len(their_trace["traceID"])
    their_spans = {s["spanID"]: s for s in their_trace["spans"]}
    for span in our_trace["spans"]:
        other = their_spans[span["spanID"]]
        # "flags" is omitempty in Jaeger's model: absent when 0 (as after OTLP translation)
        assert set(span) - {"flags"} == set(other) - {"flags"}, ("span keys", span["spanID"])
        assert span["traceID"] == our_trace["traceID"]
        assert span["operationName"] == other["operationName"]
        assert abs(span["startTime"] - other["startTime"]) <= 1
        assert abs(span["duration"] - other["duration"]) <= 1
        assert [(r["refType"], r["spanID"]) for r in span["references"]] == [
            (r["refType"], r["spanID"]) for r in other["references"]
        ]
        our_tags, their_tags = _tags(span), _tags(other)
        common = set(our_tags) & set(their_tags)
        assert {"http.request.method", "http.response.status_code", "span.kind"} <= common
        for key in common:
            assert our_tags[key] == their_tags[key], key
        assert (
            our_trace["processes"][span["processID"]]["serviceName"]
            == (their_trace["processes"][other["processID"]]["serviceName"])
        )


async def _compare_listing(http: aiohttp.ClientSession, ours: str, theirs: str) -> None:
    our_services = await _json(http, f"{ours}/api/services", headers=AUTH)
    their_services = await _json(http, f"{theirs}/api/services")
    # the Jaeger is shared by the session (other tests report their own services),
    # so compare the envelope's shape and that each total counts its own data
    assert _envelope(our_services).keys() == _envelope(their_services).keys()
    for body in (our_services, their_services):
        assert body["total"] == len(body["data"])
    assert SERVICE in our_services["data"]
    assert SERVICE in their_services["data"]
    path = f"/api/services/{SERVICE}/operations"
    our_ops = await _json(http, ours + path, headers=AUTH)
    their_ops = await _json(http, theirs + path)
    assert sorted(our_ops["data"]) == sorted(their_ops["data"])
    assert _envelope(our_ops) == _envelope(their_ops)
    path = f"/api/operations?service={SERVICE}"
    our_typed = await _json(http, ours + path, headers=AUTH)
    their_typed = await _json(http, theirs + path)
    key = lambda o: (o["name"], o["spanKind"])  # noqa: E731
    assert sorted(our_typed["data"], key=key) == sorted(their_typed["data"], key=key)
    search = f"/api/traces?service={SERVICE}&limit=10&lookback=1h"
    our_found = await _json(http, ours + search, headers=AUTH)
    their_found = await _json(http, theirs + search)
    assert {t["traceID"] for t in our_found["data"]} == {t["traceID"] for t in their_found["data"]}
    assert _envelope(our_found) == _envelope(their_found)
