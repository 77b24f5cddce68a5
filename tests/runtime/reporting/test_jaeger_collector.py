"""jaegerCollector: real HTTP on 127.0.0.1, bodies decoded by Apache thrift + jaeger-client."""

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from jaeger_testtools import RESOURCE, decode_binary_batch, make_span, tag_dict, u64
from tests import loopback

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.reporting import export, jaeger_collector


@dataclass
class Received:
    path: str
    content_type: str
    body: bytes


@dataclass
class Collector:
    """A stand-in Jaeger collector: records POSTs, answers with the queued statuses."""

    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(request.path, request.content_type, body))
        status, headers = self.answers.pop(0) if self.answers else (202, {})
        return web.Response(status=status, headers=headers)

    async def start(self) -> "Collector":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner, _ = await loopback.start(app)
        self.port = self.runner.addresses[0][1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    server = await Collector().start()
    try:
        yield server
    finally:
        assert server.runner is not None
        await server.runner.cleanup()


@pytest.fixture
async def exporter(
    collector: Collector,
) -> AsyncIterator[jaeger_collector.JaegerCollectorExporter]:
    result = jaeger_collector.JaegerCollectorExporter(collector.url + "/api/traces")
    try:
        yield result
    finally:
        await result.close()


TRACE = (0xF000_0000_0000_0002 << 64) | 0x8000_0000_0000_0003
SPAN = 0xC000_0000_0000_0004
PARENT = 0xA000_0000_0000_0005


def full_span() -> span.Span:
    return make_span(
        "GET /api/orders",
        trace_id=TRACE,
        span_id=SPAN,
        parent_id=PARENT,
        kind=span.SpanKind.SERVER,
        tags={
            "http.status_code": 500,
            "ratio": 0.75,
            "cached": True,
            "note": "naïve",
            "bad": "x\udcffy",
        },
        logs=[span.LogRecord(1_700_000_000_200_000_000, {"event": "upstream", "ok": False})],
        references=(
            span.Reference(
                span.ReferenceType.FOLLOWS_FROM,
                spancontext.SpanContext(0x77, 0x8888_0000_0000_0001),
            ),
        ),
        debug=True,
        status=span.Status(span.StatusCode.ERROR, "boom"),
        duration_ns=2_500_999,
    )


async def test_batch_round_trips_through_a_real_http_server(
    collector: Collector, exporter: jaeger_collector.JaegerCollectorExporter
) -> None:
    exporter.full_queue_dropped = lambda: 12
    outcome = await exporter.export([full_span(), make_span(span_id=9)], timeout=5)
    assert outcome.result is export.ExportResult.SUCCESS
    assert outcome.truncated == {"invalid_utf8": 1}

    (request,) = collector.requests
    assert request.path == "/api/traces"
    assert request.content_type == "application/x-thrift"
    decoded = decode_binary_batch(request.body)
    assert decoded.seq_no == 1
    assert decoded.stats == (12, 0, 0)
    batch = decoded.batch
    assert batch.process.serviceName == "api-gateway"
    assert tag_dict(batch.process.tags) == {
        "hostname": ("STRING", "gw-7c9"),
        "ip": ("STRING", "10.1.2.3"),
        "replica": ("LONG", 3),
        "ratio": ("DOUBLE", 0.5),
    }
    got, second = batch.spans
    assert got.traceIdHigh < 0 and got.traceIdLow < 0 and got.spanId < 0
    assert (u64(got.traceIdHigh) << 64 | u64(got.traceIdLow)) == TRACE
    assert u64(got.spanId) == SPAN
    assert u64(got.parentSpanId) == PARENT
    assert got.operationName == "GET /api/orders"
    assert got.flags == 3
    assert got.startTime == 1_700_000_000_123_456
    assert got.duration == 2_500
    (ref,) = got.references
    assert (ref.refType, ref.traceIdHigh, ref.traceIdLow, u64(ref.spanId)) == (
        1,
        0,
        0x77,
        0x8888_0000_0000_0001,
    )
    assert tag_dict(got.tags) == {
        "http.status_code": ("LONG", 500),
        "ratio": ("DOUBLE", 0.75),
        "cached": ("BOOL", True),
        "note": ("STRING", "naïve"),
        "bad": ("STRING", "x?y"),
        "span.kind": ("STRING", "server"),
        "error": ("BOOL", True),
        "otel.status_code": ("STRING", "ERROR"),
        "otel.status_description": ("STRING", "boom"),
    }
    (log,) = got.logs
    assert log.timestamp == 1_700_000_000_200_000
    assert tag_dict(log.fields) == {"event": ("STRING", "upstream"), "ok": ("BOOL", False)}
    assert (second.spanId, second.parentSpanId, second.references, second.logs) == (
        9,
        0,
        None,
        None,
    )
    assert second.flags == 1


async def test_endpoint_without_path_posts_to_api_traces(collector: Collector) -> None:
    exporter = jaeger_collector.JaegerCollectorExporter(collector.url)
    try:
        assert exporter.endpoint == collector.url + "/api/traces"
        await exporter.export([make_span()], timeout=5)
        assert [r.path for r in collector.requests] == ["/api/traces"]
    finally:
        await exporter.close()


async def test_one_batch_per_resource(
    collector: Collector, exporter: jaeger_collector.JaegerCollectorExporter
) -> None:
    other = span.Resource("billing")
    # 50 spans: each resource's spans are converted over several slices of the loop
    spans = [make_span(span_id=i, resource=other if i % 3 == 0 else RESOURCE) for i in range(1, 51)]
    outcome = await exporter.export(spans, timeout=5)
    assert outcome == export.ExportOutcome.success()
    decoded = [decode_binary_batch(r.body) for r in collector.requests]
    assert {d.batch.process.serviceName: [s.spanId for s in d.batch.spans] for d in decoded} == {
        "api-gateway": [i for i in range(1, 51) if i % 3],
        "billing": [i for i in range(1, 51) if i % 3 == 0],
    }
    assert sorted(d.seq_no for d in decoded) == [1, 2]


@pytest.mark.parametrize(
    ("status", "headers", "result", "retry_after"),
    [
        (503, {"Retry-After": "2"}, export.ExportResult.RETRYABLE, 2.0),
        (429, {}, export.ExportResult.RETRYABLE, None),
        (502, {}, export.ExportResult.RETRYABLE, None),
        (504, {}, export.ExportResult.RETRYABLE, None),
        (400, {}, export.ExportResult.FAILURE, None),
        (500, {}, export.ExportResult.FAILURE, None),
    ],
)
async def test_http_answers_are_classified(
    collector: Collector,
    exporter: jaeger_collector.JaegerCollectorExporter,
    status: int,
    headers: dict[str, str],
    result: export.ExportResult,
    retry_after: float | None,
) -> None:
    collector.answers.append((status, headers))
    outcome = await exporter.export([make_span()], timeout=5)
    assert (outcome.result, outcome.reason, outcome.retry_after) == (
        result,
        f"http_{status}",
        retry_after,
    )


async def test_retry_resends_the_same_body(
    collector: Collector, exporter: jaeger_collector.JaegerCollectorExporter
) -> None:
    collector.answers.append((503, {}))
    spans = [make_span(span_id=1, tags={"bad": "\ud800"})]
    first = await exporter.export(spans, timeout=5)
    assert first.result is export.ExportResult.RETRYABLE
    assert first.truncated == {"invalid_utf8": 1}
    second = await exporter.export(spans, timeout=5)
    assert second == export.ExportOutcome.success()  # truncation counted once, not per retry
    assert collector.requests[0].body == collector.requests[1].body
    assert decode_binary_batch(collector.requests[1].body).seq_no == 1


async def test_collector_down_is_retryable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = jaeger_collector.JaegerCollectorExporter(f"http://127.0.0.1:{port}/api/traces")
    try:
        outcome = await exporter.export([make_span()], timeout=2)
        assert outcome.result is export.ExportResult.RETRYABLE
        assert outcome.reason == "connection_refused"
    finally:
        await exporter.close()


async def test_hanging_collector_times_out() -> None:
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await release.wait()  # accept, read, never answer
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    exporter = jaeger_collector.JaegerCollectorExporter(f"http://127.0.0.1:{port}/api/traces")
    try:
        outcome = await exporter.export([make_span()], timeout=0.3)
        assert (outcome.result, outcome.reason) == (export.ExportResult.RETRYABLE, "timeout")
    finally:
        await exporter.close()
        release.set()
        server.close()
        await server.wait_closed()


def test_bad_endpoint_names_the_field() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        jaeger_collector.JaegerCollectorExporter("ftp://example/api/traces")
