"""Shared helpers of the reporter tests: span factories and a real local collector.

Imported as a plain module (pytest puts this directory on ``sys.path``; the
name is unique). :class:`Collector` is a real aiohttp server on 127.0.0.1
that records what it receives and answers as each test tells it to.
"""

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from tests import loopback

from gatetrace.runtime import baggage, ids, span, spancontext, tracer

RESOURCE = span.Resource(
    "api-gateway",
    (("hostname", "gw-7c9"), ("ip", "10.1.2.3"), ("port", 8080), ("replica", 3)),
)
RESOURCE_ZIPKIN_TAGS = {"hostname": "gw-7c9", "ip": "10.1.2.3", "port": "8080", "replica": "3"}
"""RESOURCE's attributes as Zipkin span tags (what the Collector's Zipkin exporter writes)."""


def finished_span(
    name: str = "GET /api/users/{id}",
    *,
    kind: span.SpanKind = span.SpanKind.SERVER,
    trace_id: int | None = None,
    span_id: int | None = None,
    parent_id: int | None = None,
    tags: Mapping[Any, Any] | None = None,
    logs: list[span.LogRecord] | None = None,
    references: tuple[span.Reference, ...] = (),
    debug: bool = False,
    random_flag: bool = True,
    trace_state: spancontext.TraceState = (),
    status: span.Status | None = None,
    start_ns: int = 1_700_000_000_123_456_789,
    duration_ns: int = 12_345_678,
    resource: span.Resource = RESOURCE,
) -> span.Span:
    """A finished, sampled span with exactly the given content (no tracer defaults)."""
    ctx = spancontext.SpanContext(
        trace_id if trace_id is not None else ids.new_trace_id(),
        span_id if span_id is not None else ids.new_span_id(),
        True,
        debug,
        random_flag,
        False,
        trace_state,
        baggage.EMPTY_BAGGAGE,
    )
    result = span.Span(
        ctx,
        name,
        kind=kind,
        parent_id=parent_id,
        resource=resource,
        references=references,
        sampled=True,
        recording=True,
        start_ns=start_ns,
        limits=span.SpanLimits(),
        metrics=tracer.TracerMetrics(),
        end_hook=None,
    )
    result.tags.update(tags or {})
    result.logs.extend(logs or [])
    if status is not None:
        result.status = status
    result.end_ns = start_ns + duration_ns
    return result


def gateway_spans(count: int) -> list[span.Span]:
    """``count`` typical gateway server spans (about 12 tags, one log)."""
    out = []
    for i in range(count):
        out.append(
            finished_span(
                tags={
                    "http.method": "GET",
                    "http.url": f"http://gw.example/api/users/{i}",
                    "http.route": "/api/users/{id}",
                    "http.status_code": 200,
                    "http.request_id": f"req-{i:08x}",
                    "client.address": "10.0.0.7",
                    "component": "gatetrace",
                    "upstream.name": "users",
                    "upstream.latency_ms": 12.5,
                    "retry": False,
                    "gatetrace.sampler.type": "probabilistic",
                    "gatetrace.sampler.param": 0.1,
                },
                logs=[span.LogRecord(1_700_000_000_130_000_000, {"event": "upstream.response"})],
            )
        )
    return out


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    wire_size: int
    """Content-Length as sent (compressed size when gzipped)."""
    body: bytes
    """The body; aiohttp's server already undid ``Content-Encoding: gzip``."""
    client_cn: str | None = None
    """Common name of the client certificate presented over TLS (mutual TLS), if any."""


def _client_cn(request: web.Request) -> str | None:
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


Responder = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass
class Collector:
    """A real HTTP server on 127.0.0.1; ``respond(request, n)`` answers the n-th request."""

    respond: Responder | None = None
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    hang: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    """Serve https with this context (None: plain http)."""

    @property
    def base(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        body = await request.read()
        size = int(request.headers.get("Content-Length", "-1"))
        if self.respond is not None:
            response = await self.respond(request, self.attempts)
            if 200 <= response.status < 300:
                self.received.append(self._received(request, size, body))
            return response
        self.received.append(self._received(request, size, body))
        return web.Response(status=202)

    @staticmethod
    def _received(request: web.Request, size: int, body: bytes) -> Received:
        return Received(request.path, dict(request.headers), size, body, _client_cn(request))

    async def start(self, port: int = 0) -> "Collector":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner, _ = await loopback.start(
            app,
            port=port,
            ssl_context=self.ssl_context,
            handle_signals=False,
            shutdown_timeout=0.1,
        )
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.hang.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def hang_forever(request: web.Request, attempt: int) -> web.StreamResponse:
    """Accept the request, then never answer (until the test's collector stops)."""
    await asyncio.sleep(3600)
    return web.Response(status=200)


def status_then_ok(status: int, failures: int, headers: dict[str, str] | None = None) -> Responder:
    """Answer ``status`` to the first ``failures`` requests, then 200."""

    async def respond(request: web.Request, attempt: int) -> web.StreamResponse:
        if attempt <= failures:
            return web.Response(status=status, headers=headers or {})
        return web.Response(status=200)

    return respond
