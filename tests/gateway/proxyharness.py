"""Real servers on 127.0.0.1 for the proxy and middleware tests.

``Stack`` runs: a nested upstream (a traced service), an upstream (a traced
service that calls the nested one for ``/api/users/nested``), and the
gateway's proxy app in front, each on its own TCP port, plus an aiohttp
client. Spans of all three are collected in lists (the gateway's through
its ActiveTracing's tracer, the services' through their own tracers).
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import test_utils, web

from gatetrace.gateway import config, proxy_app, state
from gatetrace.runtime import baggage_rules, metrics, span, tracer
from gatetrace.runtime.propagation import base as propagation
from gatetrace.runtime.propagation import composite, failures
from gatetrace.runtime.sampling import base as sampling
from gatetrace.runtime.sampling import const

ALL_FORMATS = ["tracecontext", "baggage", "b3", "b3multi", "jaeger", "xtrace"]


class RecordingProcessor:
    """A span processor keeping every exported span."""

    def __init__(self) -> None:
        self.spans: list[span.Span] = []

    def on_end(self, s: span.Span) -> None:
        self.spans.append(s)

    def by_kind(self, kind: span.SpanKind) -> list[span.Span]:
        return [s for s in self.spans if s.kind is kind]

    def one(self, kind: span.SpanKind) -> span.Span:
        found = self.by_kind(kind)
        assert len(found) == 1, f"expected one {kind.name} span, got {found}"
        return found[0]


def make_active(
    collector: RecordingProcessor,
    *,
    registry: metrics.Registry | None = None,
    sampler: sampling.Sampler | None = None,
    extract: Sequence[str] = ("tracecontext", "baggage"),
    inject: Sequence[str] = ("tracecontext", "baggage"),
    rules: baggage_rules.BaggageRules | None = None,
    priority: state.PrioritySettings | None = None,
    namespace_samplers: Mapping[str, sampling.Sampler] | None = None,
    header_tags: Sequence[tuple[str, str]] = (),
    baggage_tag_keys: Sequence[str] = (),
    service: str = "api-gateway",
    revision: int = 1,
) -> state.ActiveTracing:
    registry = registry if registry is not None else metrics.Registry()
    t = tracer.Tracer(
        span.Resource(service),
        sampler=sampler if sampler is not None else const.ConstSampler(True),
        processor=collector,
        tracer_metrics=tracer.TracerMetrics(registry),
    )
    prop = composite.build_propagator(
        list(extract), list(inject), failures.MetricsFailureCounter(registry)
    )
    return state.ActiveTracing(
        revision=revision,
        version=f"v{revision}",
        tracer=t,
        propagator=prop,
        baggage=rules if rules is not None else baggage_rules.BaggageRules(registry=registry),
        priority=priority if priority is not None else state.PrioritySettings(),
        namespace_samplers=dict(namespace_samplers or {}),
        header_tags=tuple(header_tags),
        baggage_tag_keys=frozenset(baggage_tag_keys),
    )


@dataclass
class Received:
    """What an upstream saw."""

    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Service:
    """A traced demo upstream: records requests, extracts/injects all formats."""

    name: str
    collector: RecordingProcessor = field(default_factory=RecordingProcessor)
    received: list[Received] = field(default_factory=list)
    nested_url: str = ""
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk_sent: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.tracer = tracer.Tracer(span.Resource(self.name), processor=self.collector)
        self.propagator = composite.build_propagator(ALL_FORMATS, ALL_FORMATS)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(request.method, request.path_qs, list(request.headers.items()), body)
        )
        found = self.propagator.extract(
            request.headers, propagation.MultiDictGetter(), propagation.EMPTY
        )
        server = self.tracer.start_span(
            f"{request.method} {request.path}", kind=span.SpanKind.SERVER, parent=found.context
        )
        try:
            return await self._answer(request, server, body)
        finally:
            server.finish()

    async def _answer(
        self, request: web.Request, server: span.Span, body: bytes
    ) -> web.StreamResponse:
        path = request.path
        query = request.query
        if path.endswith("/nested"):
            client = self.tracer.start_span("GET", kind=span.SpanKind.CLIENT, parent=server)
            headers: dict[str, str] = {}
            self.propagator.inject(client.context, headers, propagation.DictSetter())
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.nested_url + "/leaf", headers=headers) as resp,
            ):
                text = await resp.text()
            client.finish()
            return web.Response(text=f"nested:{text}")
        if path.endswith("/status"):
            return web.Response(status=int(query.get("code", "200")), text="status\n")
        if path.endswith("/slow"):
            await asyncio.sleep(float(query.get("ms", "100")) / 1000)
            return web.Response(text="slow\n")
        if path.endswith("/stream"):
            return await self._stream(request, int(query.get("chunks", "3")))
        if path.endswith("/redirect"):
            raise web.HTTPFound("/elsewhere", headers={"Set-Cookie": "s=1"})
        if path.endswith("/hop"):
            return web.Response(
                text="hop\n",
                headers={
                    "Connection": "X-Private-Hop",
                    "X-Private-Hop": "secret",
                    "Keep-Alive": "timeout=5",
                    "Proxy-Authenticate": "Basic",
                    "Trailer": "X-Checksum",
                    "X-Kept": "yes",
                },
            )
        if path.endswith("/cut"):
            response = web.StreamResponse(headers={"Content-Length": "1000"})
            await response.prepare(request)
            await response.write(b"x" * 100)
            assert request.transport is not None
            request.transport.close()
            return response
        payload = {
            "service": self.name,
            "path_qs": request.path_qs,
            "body_len": len(body),
            "trace_id": server.context.trace_id_hex,
        }
        return web.json_response(payload)

    async def _stream(self, request: web.Request, chunks: int) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(chunks):
            if i == chunks - 1:
                # the last chunk waits until the test saw the first one through the proxy
                await asyncio.wait_for(self.gate.wait(), 10)
            await response.write(f"chunk{i};".encode() * 1000)
            if i == 0:
                self.first_chunk_sent.set()
        await response.write_eof()
        return response


@dataclass
class Stack:
    gateway: RecordingProcessor
    registry: metrics.Registry
    holder: state.TracingHolder
    users: Service
    nested: Service
    client: test_utils.TestClient[web.Request, web.Application]
    upstream_url: str

    async def get(self, path: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        async with self.client.get(path, **kwargs) as resp:
            return resp, await resp.read()

    def users_json(self, body: bytes) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(body)
        return data


def gateway_config(upstream: str, **overrides: Any) -> config.GatewayConfig:
    document: dict[str, Any] = {
        "service": "api-gateway",
        "routes": [
            {"name": "users", "prefix": "/api/users", "upstream": upstream, "namespace": "shop"},
            {
                "name": "stripped",
                "prefix": "/strip/me",
                "upstream": upstream + "/base",
                "stripPrefix": True,
            },
            {
                "name": "billing",
                "prefix": "/api/billing",
                "upstream": upstream,
                "namespace": "billing",
                "timeoutMs": 300,
            },
            {"name": "down", "prefix": "/down", "upstream": "http://127.0.0.1:9"},
        ],
    }
    document.update(overrides)
    return config.parse_config(document)


@contextlib.asynccontextmanager
async def start_stack(
    active: state.ActiveTracing | None,
    gateway: RecordingProcessor,
    registry: metrics.Registry | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """``async with start_stack(...) as stack``: a running Stack, closed on exit."""
    registry = registry if registry is not None else metrics.Registry()
    nested = Service("nested")
    users = Service("users")
    nested_server = test_utils.TestServer(nested.app(), host="127.0.0.1")
    await nested_server.start_server()
    users.nested_url = str(nested_server.make_url("")).rstrip("/")
    users_server = test_utils.TestServer(users.app(), host="127.0.0.1")
    await users_server.start_server()
    upstream = str(users_server.make_url("")).rstrip("/")
    holder = state.TracingHolder(active)
    app = proxy_app.make_proxy_app(gateway_config(upstream, **overrides), holder, registry)
    gw_server = test_utils.TestServer(app, host="127.0.0.1")
    client = test_utils.TestClient(gw_server)
    await client.start_server()
    try:
        yield Stack(gateway, registry, holder, users, nested, client, upstream)
    finally:
        await client.close()
        await users_server.close()
        await nested_server.close()
