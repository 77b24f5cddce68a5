"""One kit-managed service (aiohttp server and client, or ASGI server and httpx client)
calling a leaf, by what the incoming request carries: unsampled, pending (``gt=p``),
sampled. What goes downstream, what the answer carries, what is counted, buffered,
exported, and what the handler sees as its current span."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import fastapi
import httpx
from aiohttp import web
from embedharness import TOKEN, uvicorn_server
from tests import loopback

from gatetrace import embed, runtime
from gatetrace.embed import breadcrumbs
from gatetrace.runtime import metrics
from gatetrace.runtime import span as _span

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = "b7ad6b7169203331"
UNSAMPLED = {"traceparent": f"00-{TRACE}-{CALLER}-00"}
PENDING = {"traceparent": f"00-{TRACE}-{CALLER}-00", "tracestate": "gt=p,vendor=1"}
SAMPLED = {"traceparent": f"00-{TRACE}-{CALLER}-01"}
CONFIG: dict[str, Any] = {
    "sampling": {"sampler": {"type": "const", "decision": False}, "parentBased": True},
    "reporters": [{"type": "memory"}],
    "batching": {"flushIntervalMs": 10},
}


class Sink:
    def __init__(self) -> None:
        self.spans: list[_span.Span] = []

    def add(self, spans: Sequence[_span.Span]) -> None:
        self.spans.extend(spans)

    async def wait(self, count: int) -> list[_span.Span]:
        for _ in range(200):
            if len(self.spans) >= count:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # and nothing more comes
        return sorted(self.spans, key=lambda s: s.start_ns)


def _leaf(seen: list[dict[str, str]]) -> web.Application:
    async def leaf(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        status = int(request.query.get("status", "200"))
        return web.Response(status=status, text="leaf", headers={"gatetrace-retro": "x"})

    app = web.Application()
    app.router.add_get("/leaf", leaf)
    return app


class Service:
    def __init__(self, kit: embed.Kit, url: str, leaf_seen: list[dict[str, str]]) -> None:
        self.kit = kit
        self.url = url
        self.leaf_seen = leaf_seen
        self.current: list[_span.Span | None] = []


def _aiohttp_app(kit: embed.Kit, leaf: str, service: list[Service]) -> web.Application:
    key = web.AppKey("session", aiohttp.ClientSession)

    async def handle(request: web.Request) -> web.Response:
        span = runtime.current_span()
        service[0].current.append(span)
        if span is not None and request.query.get("tag"):
            span.set_tag("user.id", "u-1")
        status = request.query.get("status", "200")
        async with request.app[key].get(f"{leaf}/leaf?status={status}") as answer:
            await answer.read()
        return web.Response(status=answer.status, text="done")

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[key] = aiohttp.ClientSession(trace_configs=[embed.aiohttp_trace_config(kit)])
        yield
        await app[key].close()

    app = web.Application(middlewares=[embed.aiohttp_middleware(kit)])
    app.cleanup_ctx.append(session)
    app.router.add_get("/items/{item}", handle)
    return app


def _asgi_app(kit: embed.Kit, leaf: str, service: list[Service]) -> Any:
    api = fastapi.FastAPI()

    @api.get("/items/{item}")
    async def handle(item: str, status: str = "200", tag: str = "") -> fastapi.Response:
        span = runtime.current_span()
        service[0].current.append(span)
        if span is not None and tag:
            span.set_tag("user.id", "u-1")
        async with httpx.AsyncClient(transport=embed.HttpxTransport(kit)) as client:
            answer = await client.get(f"{leaf}/leaf", params={"status": status})
        return fastapi.Response("done", status_code=answer.status_code)

    return embed.AsgiMiddleware(api, kit)


@contextlib.asynccontextmanager
async def service(flavour: str, sink: Sink) -> AsyncIterator[Service]:
    leaf_seen: list[dict[str, str]] = []
    holder: list[Service] = []
    kit = embed.Kit("svc", token=TOKEN, sink=sink, address="http://10.0.0.5:9901")
    await kit.apply(CONFIG)
    async with loopback.serving(_leaf(leaf_seen)) as leaf:
        if flavour == "aiohttp":
            server = loopback.serving(_aiohttp_app(kit, leaf, holder))
        else:
            server = uvicorn_server(_asgi_app(kit, leaf, holder))
        async with server as url:
            holder.append(Service(kit, url, leaf_seen))
            try:
                yield holder[0]
            finally:
                await kit.close()


async def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as answer:
        await answer.read()
        return answer.status, dict(answer.headers)


def _flags(traceparent: str) -> tuple[str, str, str]:
    _version, trace_id, span_id, flags = traceparent.split("-")
    return trace_id, span_id, flags


def _series(kit: embed.Kit, line: str) -> float:
    for row in metrics.render_prometheus([kit.registry]).splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


FLAVOURS = ("aiohttp", "asgi")


async def _each(test: Any) -> None:
    for flavour in FLAVOURS:
        sink = Sink()
        async with service(flavour, sink) as svc:
            await test(flavour, svc, sink)


async def test_an_unsampled_request_propagates_its_context_and_records_nothing() -> None:
    async def check(flavour: str, svc: Service, sink: Sink) -> None:
        for _ in range(2):
            status, headers = await _get(f"{svc.url}/items/1", UNSAMPLED)
            assert status == 200
            assert breadcrumbs.HEADER not in {k.lower() for k in headers}
        seen = svc.leaf_seen[-1]
        trace_id, span_id, flags = _flags(seen["traceparent"])
        assert (trace_id, flags) == (TRACE, "00")
        assert span_id not in (CALLER, "0" * 16)
        assert "tracestate" not in {k.lower() for k in seen}
        current = svc.current[-1]
        assert current is not None and not current.recording and not current.sampled
        assert current.context.trace_id_hex == TRACE
        assert current.parent_id == int(CALLER, 16)
        assert current.kind is _span.SpanKind.SERVER
        assert current.context.span_id_hex != span_id  # the client call's is its own
        assert current.is_finished
        kit = svc.kit
        started = 'gatetrace_spans_started_total{recording="false"}'
        finished = 'gatetrace_spans_finished_total{outcome="not_sampled"}'
        assert _series(kit, started) == 4, flavour
        assert _series(kit, finished) == 4, flavour
        assert len(kit.buffer) == 0
        assert await sink.wait(1) == []

    await _each(check)


async def test_a_pending_request_is_buffered_marked_downstream_and_kept_in_full() -> None:
    async def check(flavour: str, svc: Service, sink: Sink) -> None:
        status, headers = await _get(f"{svc.url}/items/7?a=1", PENDING)
        assert status == 200
        assert headers[breadcrumbs.HEADER] == "http://10.0.0.5:9901", flavour
        seen = svc.leaf_seen[-1]
        trace_id, client_id, flags = _flags(seen["traceparent"])
        assert (trace_id, flags) == (TRACE, "00")
        assert seen["tracestate"].startswith("gt=p")
        assert "vendor=1" in seen["tracestate"]
        kit = svc.kit
        assert len(kit.buffer) == 2
        assert _series(kit, "gatetrace_retro_spans_buffered_total") == 2
        assert _series(kit, 'gatetrace_spans_started_total{recording="false"}') == 0
        assert await sink.wait(1) == []
        assert kit.keep(int(TRACE, 16), "error") == 2
        server, client = await sink.wait(2)
        assert server.kind is _span.SpanKind.SERVER and client.kind is _span.SpanKind.CLIENT
        assert server.name == "GET /items/{item}" and client.name == "GET"
        assert server.parent_id == int(CALLER, 16)
        assert client.parent_id == server.context.span_id
        assert client.context.span_id_hex == client_id
        assert server.context.trace_id_hex == TRACE
        assert ("gt", "p") in server.context.trace_state
        assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns  # type: ignore[operator]
        for span in (server, client):
            assert span.tags["sampling.priority.reason"] == "error"
            assert span.tags["gatetrace.retro"] is True
            assert span.tags["http.response.status_code"] == 200
            assert span.tags["http.request.method"] == "GET"
            assert not span.is_error
        assert server.tags["url.path"] == "/items/7"
        assert server.tags["url.query"] == "a=1"
        assert server.tags["http.route"] == "/items/{item}"
        assert server.tags["server.address"] == "127.0.0.1"
        assert server.tags["network.peer.address"] == "127.0.0.1"
        assert str(client.tags["url.full"]).endswith("/leaf?status=200")
        assert kit.keep(int(TRACE, 16), "error") == 0

    await _each(check)


async def test_a_pending_span_the_handler_wrote_on_keeps_what_it_wrote() -> None:
    async def check(flavour: str, svc: Service, sink: Sink) -> None:
        await _get(f"{svc.url}/items/7?tag=1", PENDING)
        current = svc.current[-1]
        assert current is not None and current.recording
        assert svc.kit.keep(int(TRACE, 16), "slow") == 2
        server, _client = await sink.wait(2)
        assert server is current
        assert server.tags["user.id"] == "u-1"
        assert server.tags["http.route"] == "/items/{item}"
        assert server.tags["sampling.priority.reason"] == "slow"

    await _each(check)


async def test_a_pending_failure_is_written_on_its_spans() -> None:
    async def check(flavour: str, svc: Service, sink: Sink) -> None:
        status, _headers = await _get(f"{svc.url}/items/7?status=503", PENDING)
        assert status == 503
        assert svc.kit.keep(int(TRACE, 16), "error") == 2
        server, client = await sink.wait(2)
        for span in (server, client):
            assert span.is_error and span.tags["error.type"] == "503"
            assert span.tags["http.response.status_code"] == 503

    await _each(check)


async def test_a_sampled_request_is_exported_with_its_attributes() -> None:
    async def check(flavour: str, svc: Service, sink: Sink) -> None:
        status, headers = await _get(f"{svc.url}/items/3", SAMPLED)
        assert status == 200
        assert breadcrumbs.HEADER not in {k.lower() for k in headers}
        _trace, client_id, flags = _flags(svc.leaf_seen[-1]["traceparent"])
        assert flags == "01"
        server, client = await sink.wait(2)
        assert client.context.span_id_hex == client_id
        assert client.parent_id == server.context.span_id
        assert server.tags["http.route"] == "/items/{item}"
        assert server.tags["http.response.status_code"] == 200
        assert server.tags["url.path"] == "/items/3"
        assert client.tags["http.response.status_code"] == 200
        assert "sampling.priority.reason" not in server.tags
        assert svc.current[-1] is server
        assert len(svc.kit.buffer) == 0

    await _each(check)
