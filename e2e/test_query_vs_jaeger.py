"""The gateway's query API against the real thing: the same traces, sent by the
gateway to a real Jaeger (jaegerCollector reporter) and kept in its own store (memory
reporter), read back from both query APIs — the JSON must have Jaeger's shape."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from peers import servers

from gatetrace.gateway import config, server
from gatetrace.runtime import ids, span, spancontext, tracer
from gatetrace.runtime.reporting import export, jaeger_collector

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
    async with _serving(app) as url:
        yield url


@contextlib.asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[str]:
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
    for our_span in our_trace["spans"]:
        other = their_spans[our_span["spanID"]]
        # "flags" is omitempty in Jaeger's model: absent when 0 (as after OTLP translation)
        assert set(our_span) - {"flags"} == set(other) - {"flags"}, (
            "span keys",
            our_span["spanID"],
        )
        assert our_span["traceID"] == our_trace["traceID"]
        assert our_span["operationName"] == other["operationName"]
        assert abs(our_span["startTime"] - other["startTime"]) <= 1
        assert abs(our_span["duration"] - other["duration"]) <= 1
        assert [(r["refType"], r["spanID"]) for r in our_span["references"]] == [
            (r["refType"], r["spanID"]) for r in other["references"]
        ]
        our_tags, their_tags = _tags(our_span), _tags(other)
        common = set(our_tags) & set(their_tags)
        assert {"http.request.method", "http.response.status_code", "span.kind"} <= common
        for key in common:
            assert our_tags[key] == their_tags[key], key
        assert (
            our_trace["processes"][our_span["processID"]]["serviceName"]
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


# -- /api/dependencies against Jaeger's, on the same traces ----------------------------


class _Collect:
    def __init__(self) -> None:
        self.spans: list[span.Span] = []

    def on_end(self, finished: span.Span) -> None:
        self.spans.append(finished)


class _Services:
    """One tracer per service name, all finishing into one list."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.out = _Collect()
        self._tracers: dict[str, tracer.Tracer] = {}

    def name(self, service: str) -> str:
        return f"{service}-{self.suffix}"

    def __getitem__(self, service: str) -> tracer.Tracer:
        found = self._tracers.get(service)
        if found is None:
            found = self._tracers[service] = tracer.Tracer(
                span.Resource(self.name(service)), processor=self.out
            )
        return found


def _shapes(services: _Services, old_ns: int) -> None:
    """Traces whose dependency edges are worth comparing, finished into ``services.out``."""
    a, b, gw = services["a"], services["b"], services["gw"]
    server, client = span.SpanKind.SERVER, span.SpanKind.CLIENT
    # a service calling itself through the gateway: a -> gw -> a
    root = a.start_span("GET /start", parent=None, kind=server)
    out = a.start_span("GET /leaf", parent=root, kind=client)
    edge = gw.start_span("GET /leaf", parent=out.context, kind=server)
    relay = gw.start_span("GET /leaf", parent=edge, kind=client)
    leaf = a.start_span("GET /leaf", parent=relay.context, kind=server)
    for s in (leaf, relay, edge, out, root):
        s.finish()
    # the gateway calling itself (a route back to its own port): gw -> gw
    outer = gw.start_span("GET /loop", parent=None, kind=server)
    hop = gw.start_span("GET /loop", parent=outer, kind=client)
    inner = gw.start_span("GET /loop", parent=hop.context, kind=server)
    for s in (inner, hop, outer):
        s.finish()
    # internal spans of one service, then a call to b twice
    work = b.start_span("job", parent=None)
    step = b.start_span("step", parent=work)
    for _ in range(2):
        call = b.start_span("GET /a", parent=step, kind=client)
        a.start_span("GET /a", parent=call.context, kind=server).finish()
        call.finish()
    step.finish()
    work.finish()
    # a FOLLOWS_FROM reference only: no parent for Jaeger's dependencies
    producer = a.start_span("send", parent=None, kind=span.SpanKind.PRODUCER)
    producer.finish()
    follows = span.Reference(span.ReferenceType.FOLLOWS_FROM, producer.context)
    b.start_span("receive", parent=None, kind=span.SpanKind.CONSUMER, references=[follows]).finish()
    # a child whose parent never arrived
    ghost = spancontext.SpanContext(ids.new_trace_id(), ids.new_span_id(), True)
    b.start_span("orphan", parent=ghost, kind=server).finish()
    # a trace that started long before the window and ended inside it
    early = a.start_span("GET /slow", parent=None, kind=server, start_ns=old_ns)
    late = a.start_span("GET /b", parent=early, kind=client)
    b.start_span("GET /b", parent=late.context, kind=server).finish()
    late.finish()
    early.finish()


def _edges(body: dict[str, Any], services: _Services) -> dict[tuple[str, str], int]:
    ours = {services.name(s) for s in ("a", "b", "gw")}
    return {
        (d["parent"], d["child"]): d["callCount"]
        for d in body["data"]
        if d["parent"] in ours or d["child"] in ours
    }


def _remote(traceparent: str) -> spancontext.SpanContext:
    _, trace_id, span_id, _ = traceparent.split("-")
    return spancontext.SpanContext(int(trace_id, 16), int(span_id, 16), True)


def _traceparent(context: spancontext.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


@contextlib.asynccontextmanager
async def _calling_itself(services: _Services) -> AsyncIterator[str]:
    """Service ``a`` whose /self/start calls /self/leaf back through the gateway (the
    gateway's proxy URL arrives in the ``x-gateway`` header), tracing both."""
    a = services["a"]

    async def handle(request: web.Request) -> web.Response:
        server_span = a.start_span(
            request.path, parent=_remote(request.headers["traceparent"]), kind=span.SpanKind.SERVER
        )
        if request.path.endswith("/start"):
            out = a.start_span("GET /self/leaf", parent=server_span, kind=span.SpanKind.CLIENT)
            headers = {"traceparent": _traceparent(out.context)}
            async with (
                aiohttp.ClientSession() as http,
                http.get(request.headers["x-gateway"] + "/self/leaf", headers=headers) as answer,
            ):
                assert answer.status == 200
            out.finish()
        server_span.finish()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/self/{tail:.*}", handle)
    async with _serving(app) as url:
        yield url


async def test_dependencies_match_jaeger(jaeger: servers.Jaeger) -> None:
    """Jaeger counts every parent -> child pair of spans (one service's own pairs too)
    of the traces lying wholly inside the window; so must we."""
    services = _Services(format(ids.new_span_id(), "x")[:8])
    now_ns = time.time_ns()
    _shapes(services, old_ns=now_ns - 2 * 3600 * 1_000_000_000)
    async with _calling_itself(services) as service_a:
        settings = config.parse_config(
            {
                "service": services.name("gw"),
                "listen": "127.0.0.1:0",
                "admin": {"listen": "127.0.0.1:0"},
                "routes": [{"name": "self", "prefix": "/self", "upstream": service_a}],
                "tracing": {
                    "sampling": {"sampler": {"type": "const", "decision": True}},
                    "reporters": [
                        {"type": "memory"},
                        {"type": "jaegerCollector", "endpoint": jaeger.collector_url},
                    ],
                    "batching": {"flushIntervalMs": 50},
                },
            }
        )
        gw = server.Gateway(settings, token=TOKEN)
        await gw.start()
        exporter = jaeger_collector.JaegerCollectorExporter(jaeger.collector_url)
        try:
            async with aiohttp.ClientSession() as http:
                headers = {"x-gateway": gw.proxy_url}
                async with http.get(gw.proxy_url + "/self/start", headers=headers) as answer:
                    assert answer.status == 200
                spans = services.out.spans
                gw.store.add(spans)
                outcome = await exporter.export(spans, 10.0)
                assert outcome.result is export.ExportResult.SUCCESS, outcome
                end_ms = time.time_ns() // 1_000_000 + 60_000
                for lookback_h in (1, 3):
                    query = f"/api/dependencies?endTs={end_ms}&lookback={lookback_h * 3_600_000}"
                    ours: dict[tuple[str, str], int] = {}
                    theirs: dict[tuple[str, str], int] = {}
                    for _ in range(100):  # both stores index what their reporters sent
                        theirs = _edges(await _json(http, jaeger.query_url + query), services)
                        ours = _edges(
                            await _json(http, gw.admin_url + query, headers=AUTH), services
                        )
                        if ours == theirs and sum(ours.values()) >= 16:
                            break
                        await asyncio.sleep(0.1)
                    assert ours == theirs, f"lookback {lookback_h}h"
                    # through the gateway: a -> gw -> gw (server -> client) -> a
                    a, gw_name = services.name("a"), services.name("gw")
                    assert (ours[(a, gw_name)], ours[(gw_name, a)]) == (
                        1 + 1,
                        1 + 2,
                    )  # shapes + real
                    assert ours[(gw_name, gw_name)] >= 2 + 2
                    # the trace begun two hours ago counts only in the 3-hour window
                    assert ours.get((a, services.name("b")), 0) == (lookback_h == 3)
        finally:
            await exporter.close()
            await gw.stop(5.0)
