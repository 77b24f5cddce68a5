"""jaegerAgent: real UDP datagrams on 127.0.0.1, decoded by Apache thrift + jaeger-client types."""

import asyncio
import math
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jaeger_testtools import RESOURCE, UdpAgent, decode_emit_batch, make_span, tag_dict, u64

from gatetrace.runtime import metrics, span, spancontext
from gatetrace.runtime.reporting import engine, export, jaeger_agent


@pytest.fixture
async def agent() -> AsyncIterator[UdpAgent]:
    server = UdpAgent()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def exporter(agent: UdpAgent) -> AsyncIterator[jaeger_agent.JaegerAgentExporter]:
    result = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port)
    try:
        yield result
    finally:
        await result.close()


HIGH_TRACE = (0x9F00_0000_0000_0001 << 64) | 0x8000_0000_0000_00FF
HIGH_SPAN = 0xFEDC_BA98_7654_3210
PARENT = 0x8111_1111_1111_1112


def full_span() -> span.Span:
    refs = (
        span.Reference(
            span.ReferenceType.CHILD_OF,
            spancontext.SpanContext(HIGH_TRACE, PARENT),
        ),
        span.Reference(
            span.ReferenceType.FOLLOWS_FROM,
            spancontext.SpanContext(0x42 << 64 | 0x43, 0x9999_0000_0000_0001),
        ),
    )
    return make_span(
        "POST /api/payments",
        trace_id=HIGH_TRACE,
        span_id=HIGH_SPAN,
        parent_id=PARENT,
        kind=span.SpanKind.CLIENT,
        tags={
            "http.method": "POST",
            "http.status_code": 503,
            "negative": -(1 << 63),
            "max": (1 << 63) - 1,
            "ratio": 0.25,
            "inf": math.inf,
            "cached": False,
            "retried": True,
            "unicode": "grüße 🚀",
            "empty": "",
        },
        logs=[
            span.LogRecord(1_700_000_000_130_000_999, {"event": "retry", "attempt": 2}),
            span.LogRecord(1_700_000_000_131_000_000, {"ok": True, "latency": 1.5}),
        ],
        references=refs,
        debug=True,
        status=span.Status(span.StatusCode.ERROR, "upstream 503"),
        start_ns=1_700_000_000_123_456_789,
        duration_ns=12_345_678,
    )


async def test_every_field_round_trips(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    exporter.full_queue_dropped = lambda: 7
    outcome = await exporter.export([full_span()], timeout=2)
    assert outcome == export.ExportOutcome.success()

    decoded = decode_emit_batch(await agent.receive())
    assert decoded.seq_no == 1
    assert decoded.stats == (7, 0, 0)
    process = decoded.batch.process
    assert process.serviceName == "api-gateway"
    assert tag_dict(process.tags) == {
        "hostname": ("STRING", "gw-7c9"),
        "ip": ("STRING", "10.1.2.3"),
        "replica": ("LONG", 3),
        "ratio": ("DOUBLE", 0.5),
    }
    (got,) = decoded.batch.spans
    assert got.traceIdHigh == 0x9F00_0000_0000_0001 - (1 << 64)  # high bit set -> negative
    assert got.traceIdLow == 0x8000_0000_0000_00FF - (1 << 64)
    assert (u64(got.traceIdHigh) << 64 | u64(got.traceIdLow)) == HIGH_TRACE
    assert got.spanId < 0 and u64(got.spanId) == HIGH_SPAN
    assert got.parentSpanId < 0 and u64(got.parentSpanId) == PARENT
    assert got.operationName == "POST /api/payments"
    assert got.flags == 3  # sampled | debug
    assert got.startTime == 1_700_000_000_123_456
    assert got.duration == 12_345
    refs = [
        (r.refType, u64(r.traceIdHigh), u64(r.traceIdLow), u64(r.spanId)) for r in got.references
    ]
    assert refs == [
        (0, 0x9F00_0000_0000_0001, 0x8000_0000_0000_00FF, PARENT),
        (1, 0x42, 0x43, 0x9999_0000_0000_0001),
    ]
    assert tag_dict(got.tags) == {
        "http.method": ("STRING", "POST"),
        "http.status_code": ("LONG", 503),
        "negative": ("LONG", -(1 << 63)),
        "max": ("LONG", (1 << 63) - 1),
        "ratio": ("DOUBLE", 0.25),
        "inf": ("DOUBLE", math.inf),
        "cached": ("BOOL", False),
        "retried": ("BOOL", True),
        "unicode": ("STRING", "grüße 🚀"),
        "empty": ("STRING", ""),
        "span.kind": ("STRING", "client"),
        "error": ("BOOL", True),
        "otel.status_code": ("STRING", "ERROR"),
        "otel.status_description": ("STRING", "upstream 503"),
    }
    assert [(log.timestamp, tag_dict(log.fields)) for log in got.logs] == [
        (1_700_000_000_130_000, {"event": ("STRING", "retry"), "attempt": ("LONG", 2)}),
        (1_700_000_000_131_000, {"ok": ("BOOL", True), "latency": ("DOUBLE", 1.5)}),
    ]


async def test_root_internal_span_has_no_parent_refs_or_kind(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    root = make_span("job", kind=span.SpanKind.INTERNAL, trace_id=5, span_id=6)
    assert (await exporter.export([root], timeout=2)).result is export.ExportResult.SUCCESS
    (got,) = decode_emit_batch(await agent.receive()).batch.spans
    assert (got.traceIdHigh, got.traceIdLow, got.spanId, got.parentSpanId) == (0, 5, 6, 0)
    assert got.references is None
    assert got.logs is None
    assert got.flags == 1
    assert got.tags is None  # no tags at all: the optional list is left out


async def test_kinds_map_to_span_kind_tags(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    kinds = [span.SpanKind.SERVER, span.SpanKind.PRODUCER, span.SpanKind.CONSUMER]
    spans = [make_span(span_id=i + 1, kind=k) for i, k in enumerate(kinds)]
    spans.append(make_span(span_id=9, kind=span.SpanKind.SERVER, tags={"span.kind": "custom"}))
    await exporter.export(spans, timeout=2)
    got = decode_emit_batch(await agent.receive()).batch.spans
    assert [tag_dict(s.tags)["span.kind"][1] for s in got] == [
        "server",
        "producer",
        "consumer",
        "custom",
    ]


def big_span(span_id: int, size: int) -> span.Span:
    return make_span(span_id=span_id, tags={"payload": "x" * size, "n": span_id})


async def test_large_batches_split_into_datagrams_within_the_limit(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    spans = [big_span(i + 1, 3000 + 37 * i) for i in range(120)]  # about 540 KB in all
    outcome = await exporter.export(spans, timeout=5)
    assert outcome == export.ExportOutcome.success()
    await asyncio.sleep(0.05)
    datagrams = agent.drain()
    assert len(datagrams) == exporter.datagrams_sent >= 9
    assert all(len(d) <= 65_000 for d in datagrams)
    decoded = [decode_emit_batch(d) for d in datagrams]
    assert [d.seq_no for d in decoded] == list(range(1, len(datagrams) + 1))
    ids = [u64(s.spanId) for d in decoded for s in d.batch.spans]
    assert sorted(ids) == list(range(1, 121))  # every span exactly once
    assert ids == list(range(1, 121))  # and in order
    for d in decoded:
        assert d.batch.process.serviceName == "api-gateway"
        for s in d.batch.spans:
            assert tag_dict(s.tags)["payload"] == (
                "STRING",
                "x" * (3000 + 37 * (u64(s.spanId) - 1)),
            )


async def test_small_packet_size_is_honoured(agent: UdpAgent) -> None:
    exporter = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port, max_packet_size=4096)
    try:
        spans = [big_span(i + 1, 900) for i in range(40)]
        assert (await exporter.export(spans, timeout=5)).dropped == {}
        await asyncio.sleep(0.05)
        datagrams = agent.drain()
        assert len(datagrams) >= 10
        assert all(len(d) <= 4096 for d in datagrams)
        ids = [u64(s.spanId) for d in datagrams for s in decode_emit_batch(d).batch.spans]
        assert ids == list(range(1, 41))
    finally:
        await exporter.close()


async def test_span_too_large_alone_is_dropped_and_counted(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    huge = make_span(span_id=99, tags={f"blob{i}": "y" * 30_000 for i in range(3)})
    spans = [big_span(1, 100), huge, big_span(2, 100)]
    outcome = await exporter.export(spans, timeout=2)
    assert outcome.result is export.ExportResult.SUCCESS
    assert outcome.dropped == {"too_large": 1}
    first = decode_emit_batch(await agent.receive())
    assert [u64(s.spanId) for s in first.batch.spans] == [1, 2]

    # the next datagram reports the cumulative too-large count in ClientStats
    await exporter.export([big_span(3, 10)], timeout=2)
    second = decode_emit_batch(await agent.receive())
    assert second.stats == (0, 1, 0)
    assert second.seq_no == 2
    assert exporter.too_large_dropped == 1


async def test_spans_of_other_resources_get_their_own_process(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    other = span.Resource("billing", (("zone", "b"),))
    spans = [make_span(span_id=1), make_span(span_id=2, resource=other), make_span(span_id=3)]
    await exporter.export(spans, timeout=2)
    await asyncio.sleep(0.05)
    decoded = [decode_emit_batch(d).batch for d in agent.drain()]
    by_service = {b.process.serviceName: [u64(s.spanId) for s in b.spans] for b in decoded}
    assert by_service == {"api-gateway": [1, 3], "billing": [2]}


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    def __repr__(self) -> str:
        raise RuntimeError("no")


async def test_awkward_values_are_sanitised_and_counted(agent: UdpAgent) -> None:
    exporter = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port, max_string_bytes=1000)
    try:
        bad = make_span(
            "op\udcff",
            tags={
                "surrogate": "a\ud800b",
                "key\udc80": "v",
                7: "int key",
                "too_big": 1 << 70,
                "none": None,
                "bytes": b"\xffraw",
                "list": [1, 2],
                "unprintable": Unprintable(),
                "long": "é" * 800,  # 1600 bytes: cut to 1000 on a character boundary
            },
            logs=[span.LogRecord(1_700_000_000_000_000_000, {"dump": "z" * 5000, "n": 1 << 64})],
            resource=span.Resource("svc\udcff"),
        )
        outcome = await exporter.export([bad], timeout=2)
        assert outcome.result is export.ExportResult.SUCCESS
        assert outcome.truncated == {
            "invalid_utf8": 4,  # operation name, tag value, tag key, service name
            "value_type": 5,  # int key, None, bytes, list, unprintable object
            "value_range": 2,  # 1 << 70 and 1 << 64 do not fit an i64
            "value_length": 2,  # "é" * 800 and the 5000-byte log field
        }
        decoded = decode_emit_batch(await agent.receive())
        assert decoded.batch.process.serviceName == "svc?"
        (got,) = decoded.batch.spans
        assert got.operationName == "op?"
        tags = tag_dict(got.tags)
        assert tags["surrogate"] == ("STRING", "a?b")
        assert tags["key?"] == ("STRING", "v")
        assert tags["7"] == ("STRING", "int key")
        assert tags["too_big"] == ("STRING", str(1 << 70))
        assert tags["none"] == ("STRING", "None")
        assert tags["bytes"] == ("STRING", "\ufffdraw")
        assert tags["list"] == ("STRING", "[1, 2]")
        assert tags["unprintable"] == ("STRING", "<Unprintable>")
        assert tags["long"] == ("STRING", "é" * 500)
        fields = tag_dict(got.logs[0].fields)
        assert fields["dump"] == ("STRING", "z" * 1000)
        assert fields["n"] == ("STRING", str(1 << 64))
    finally:
        await exporter.close()


async def test_big_batch_export_lets_the_loop_run(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start_ticks = ticks
    spans = [make_span(span_id=i + 1, tags={"k": "v" * 50}) for i in range(1024)]
    await exporter.export(spans, timeout=5)
    during = ticks - start_ticks
    stop.set()
    await task
    assert during >= 1024 // 64 - 1  # the encoder yielded every 64 spans


async def test_export_after_close_reopens_and_empty_batch_is_a_no_op(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    assert await exporter.export([], timeout=1) == export.ExportOutcome.success()
    await exporter.close()
    await exporter.export([make_span(span_id=5)], timeout=2)
    (got,) = decode_emit_batch(await agent.receive()).batch.spans
    assert got.spanId == 5


async def test_socket_failure_is_retryable_and_recovers(
    agent: UdpAgent, exporter: jaeger_agent.JaegerAgentExporter
) -> None:
    assert (await exporter.export([make_span(span_id=1)], timeout=2)).dropped == {}
    assert exporter._socket is not None
    exporter._socket.close()  # the descriptor goes bad under the exporter
    failed = await exporter.export([make_span(span_id=2)], timeout=2)
    assert failed.result is export.ExportResult.RETRYABLE
    assert failed.reason == "ebadf"
    recovered = await exporter.export([make_span(span_id=3)], timeout=2)
    assert recovered == export.ExportOutcome.success()
    await asyncio.sleep(0.05)
    received = [decode_emit_batch(d) for d in agent.drain()]
    assert [u64(s.spanId) for d in received for s in d.batch.spans] == [1, 3]
    assert received[-1].stats == (0, 0, 0)  # nothing was lost for good: the engine retries


async def test_failure_mid_batch_counts_only_the_lost_datagram(
    agent: UdpAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port, max_packet_size=2048)
    try:
        spans = [big_span(i + 1, 1500) for i in range(4)]  # one span per datagram
        sent_first = False
        real_send = jaeger_agent._send_datagram

        def send_then_break(sock: socket.socket, data: bytes, address: Any) -> bool:
            nonlocal sent_first
            if sent_first and not sock_broken:
                sock_broken.append(sock)
                sock.close()  # the descriptor goes bad after the first datagram
            sent_first = True
            return real_send(sock, data, address)

        # fault injection, not a fake: the real socket is closed at a chosen moment,
        # so the kernel refuses the second datagram (EBADF); the wire stays real
        sock_broken: list[socket.socket] = []
        monkeypatch.setattr(jaeger_agent, "_send_datagram", send_then_break)
        outcome = await exporter.export(spans, timeout=2)
        assert outcome.result is export.ExportResult.SUCCESS
        assert outcome.dropped == {"export_failed": 1}
        await asyncio.sleep(0.05)
        received = [decode_emit_batch(d) for d in agent.drain()]
        assert [u64(s.spanId) for d in received for s in d.batch.spans] == [1, 3, 4]
        assert received[-1].stats == (0, 0, 1)  # failedToEmitSpans
        assert exporter.failed_to_emit == 1
    finally:
        await exporter.close()


async def test_batching_engine_drives_the_exporter_and_feeds_client_stats(agent: UdpAgent) -> None:
    exporter = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port)
    settings = engine.BatchSettings(max_queue_size=100, max_batch_size=40, flush_interval_ms=50)
    registry = metrics.Registry()
    processor = engine.BatchingProcessor(exporter, settings, registry)
    huge = make_span(span_id=1000, tags={f"b{i}": "z" * 30_000 for i in range(3)})
    processor.on_end(huge)
    for i in range(119):  # 99 fit the queue next to the huge span, 20 are dropped
        processor.on_end(make_span(span_id=i + 1))
    processor.start()
    assert await processor.force_flush(5)
    await processor.shutdown(5)

    await asyncio.sleep(0.05)
    decoded = [decode_emit_batch(d) for d in agent.drain()]
    ids = [u64(s.spanId) for d in decoded for s in d.batch.spans]
    assert sorted(ids) == list(range(1, 100))
    assert decoded[-1].stats == (20, 1, 0)  # full queue (from the engine), too large, failed
    labels = ("jaegerAgent", "0")
    assert processor.metrics.exported.value(labels) == 99
    assert processor.metrics.dropped.value((*labels, "too_large")) == 1
    assert processor.metrics.dropped.value((*labels, "queue_full")) == 20


def test_invalid_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="port"):
        jaeger_agent.JaegerAgentExporter("127.0.0.1", 0)
    with pytest.raises(ValueError, match="max_packet_size"):
        jaeger_agent.JaegerAgentExporter("127.0.0.1", 6831, max_packet_size=70_000)
    with pytest.raises(ValueError, match="host"):
        jaeger_agent.JaegerAgentExporter("", 6831)
    assert RESOURCE.service_name == "api-gateway"


def test_uvloop_sends_the_same_datagrams() -> None:
    """The gateway runs on uvloop by default when installed (``eventLoop: auto``), and
    uvloop has no ``loop.sock_sendto``: the exporter must not depend on it."""
    import uvloop

    agent = UdpAgent()

    async def send() -> export.ExportOutcome:
        exporter = jaeger_agent.JaegerAgentExporter("127.0.0.1", agent.port, max_packet_size=2048)
        try:
            return await exporter.export([big_span(i + 1, 1500) for i in range(3)], timeout=2)
        finally:
            await exporter.close()

    try:
        assert uvloop.run(send()) == export.ExportOutcome.success()
        received = [decode_emit_batch(d) for d in agent.drain()]
        assert [u64(s.spanId) for d in received for s in d.batch.spans] == [1, 2, 3]
    finally:
        agent.close()


async def test_waiting_for_room_sends_once_the_socket_is_writable(agent: UdpAgent) -> None:
    """The EAGAIN path (a full send buffer; loopback UDP drops rather than blocks, so it
    is driven directly): it waits for the socket to be writable, then sends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        waiting = jaeger_agent._send_when_writable(sock, b"datagram", ("127.0.0.1", agent.port))
        await asyncio.wait_for(waiting, 5)
        assert await agent.receive() == b"datagram"
    finally:
        sock.close()
