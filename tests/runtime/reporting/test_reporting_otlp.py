"""The otlpHttp reporter: what we send, decoded by opentelemetry-proto's own classes."""

import struct

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from reportertools import RESOURCE, Collector, finished_span, gateway_spans

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.reporting import engine, export, otlp, otlp_encoding
from gatetrace.runtime.reporting import protobuf_wire as pb

Request = trace_service_pb2.ExportTraceServiceRequest


def decode(body: bytes) -> trace_service_pb2.ExportTraceServiceRequest:
    request = Request()
    request.ParseFromString(body)
    # every byte is accounted for: protobuf's own encoder writes exactly the same bytes
    assert request.SerializeToString() == body
    return request


def value(any_value: common_pb2.AnyValue) -> object:
    which = any_value.WhichOneof("value")
    assert which is not None
    return getattr(any_value, which)


def attributes(kvs: object) -> dict[str, object]:
    return {kv.key: value(kv.value) for kv in kvs}  # type: ignore[attr-defined]


def test_every_field_round_trips() -> None:
    linked = spancontext.SpanContext(
        0xAAAA_0000_0000_0000_0000_0000_0000_BBBB, 0xCCCC, True, trace_state=(("k", "v"),)
    )
    s = finished_span(
        "GET /users",
        kind=span.SpanKind.CLIENT,
        trace_id=0xF000_0000_0000_0000_0000_0000_0000_0001,
        parent_id=0xFFFF_FFFF_FFFF_FFFE,
        tags={"s": "text", "t": True, "f": False, "i": -42, "n": 1 << 62, "d": 2.5, "e": ""},
        logs=[
            span.LogRecord(1_700_000_000_200_000_001, {"event": "retry", "attempt": 2}),
            span.LogRecord(1_700_000_000_300_000_002, {"message": "no event name"}),
        ],
        references=(span.Reference(span.ReferenceType.FOLLOWS_FROM, linked),),
        trace_state=(("vendor", "abc"), ("other", "x=y")),
        status=span.Status(span.StatusCode.ERROR, "upstream reset"),
        start_ns=1_700_000_000_123_456_789,
        duration_ns=987_654,
    )
    body, truncated = otlp_encoding.OtlpEncoder().encode([s])
    assert truncated == {}
    request = decode(body)
    (resource_spans,) = request.resource_spans
    assert attributes(resource_spans.resource.attributes) == {
        "service.name": "api-gateway",
        "hostname": "gw-7c9",
        "ip": "10.1.2.3",
        "port": 8080,
        "replica": 3,
    }
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "gatetrace"
    assert scope_spans.scope.version == otlp_encoding.SCOPE_VERSION
    (out,) = scope_spans.spans
    assert out.trace_id == s.trace_id.to_bytes(16, "big")
    assert out.span_id == s.span_id.to_bytes(8, "big")
    assert out.parent_span_id == (0xFFFF_FFFF_FFFF_FFFE).to_bytes(8, "big")
    assert out.trace_state == "vendor=abc,other=x=y"
    assert out.name == "GET /users"
    assert out.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert out.start_time_unix_nano == 1_700_000_000_123_456_789
    assert out.end_time_unix_nano == 1_700_000_000_123_456_789 + 987_654
    assert attributes(out.attributes) == {
        "s": "text",
        "t": True,
        "f": False,
        "i": -42,
        "n": 1 << 62,
        "d": 2.5,
        "e": "",
    }
    assert [a.value.WhichOneof("value") for a in out.attributes] == [
        "string_value",
        "bool_value",
        "bool_value",
        "int_value",
        "int_value",
        "double_value",
        "string_value",
    ]
    assert [(e.time_unix_nano, e.name, attributes(e.attributes)) for e in out.events] == [
        (1_700_000_000_200_000_001, "retry", {"attempt": 2}),
        (1_700_000_000_300_000_002, "log", {"message": "no event name"}),
    ]
    (link,) = out.links
    assert link.trace_id == linked.trace_id.to_bytes(16, "big")
    assert link.span_id == linked.span_id.to_bytes(8, "big")
    assert link.trace_state == "k=v"
    assert attributes(link.attributes) == {"opentracing.ref_type": "follows_from"}
    assert link.flags == 1
    assert out.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert out.status.message == "upstream reset"
    assert out.flags == 0x03  # sampled + random


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (span.SpanKind.INTERNAL, trace_pb2.Span.SPAN_KIND_INTERNAL),
        (span.SpanKind.SERVER, trace_pb2.Span.SPAN_KIND_SERVER),
        (span.SpanKind.CLIENT, trace_pb2.Span.SPAN_KIND_CLIENT),
        (span.SpanKind.PRODUCER, trace_pb2.Span.SPAN_KIND_PRODUCER),
        (span.SpanKind.CONSUMER, trace_pb2.Span.SPAN_KIND_CONSUMER),
    ],
)
def test_kinds_and_no_parent(kind: span.SpanKind, expected: int) -> None:
    s = finished_span(kind=kind, random_flag=False, status=span.Status(span.StatusCode.OK))
    (out,) = (
        decode(otlp_encoding.OtlpEncoder().encode([s])[0]).resource_spans[0].scope_spans[0].spans
    )
    assert out.kind == expected
    assert out.parent_span_id == b""
    assert out.status.code == trace_pb2.Status.STATUS_CODE_OK
    assert out.flags == 0x01


def test_spans_grouped_by_resource_in_order() -> None:
    other = span.Resource("worker")
    spans = [finished_span(), finished_span(resource=other), finished_span()]
    request = decode(otlp_encoding.OtlpEncoder().encode(spans)[0])
    assert [
        attributes(rs.resource.attributes)["service.name"] for rs in request.resource_spans
    ] == [
        "api-gateway",
        "worker",
    ]
    first = request.resource_spans[0].scope_spans[0].spans
    assert [s.span_id for s in first] == [
        spans[0].span_id.to_bytes(8, "big"),
        spans[2].span_id.to_bytes(8, "big"),
    ]


def test_repeated_batches_encode_identically() -> None:
    """The attribute caches never change what is written."""
    encoder = otlp_encoding.OtlpEncoder()
    spans = gateway_spans(50)
    first = encoder.encode(spans)[0]
    assert encoder.encode(spans)[0] == first
    assert otlp_encoding.OtlpEncoder().encode(spans)[0] == first
    assert len(decode(first).resource_spans[0].scope_spans[0].spans) == 50


def test_attribute_caches_stay_bounded_whatever_keys_arrive() -> None:
    """Tag keys are caller data (they may embed ids): no cache may grow without limit."""
    encoder = otlp_encoding.OtlpEncoder()
    limit = otlp_encoding._CACHE_LIMIT + 1
    for batch in range(30):
        spans = [
            finished_span(tags={f"k{batch}.{n}.{i}": bool(i % 2) for i in range(100)})
            for n in range(5)
        ]
        encoder.encode(spans)
    caches = (encoder._attrs, encoder._keys)
    assert max(len(cache) for cache in caches) <= limit


def test_bad_values_are_encoded_and_counted() -> None:
    s = finished_span(
        "op\ud800",
        tags={
            "surrogate": "bad\udc80",
            "long": "y" * 50,
            "huge": 1 << 80,
            "list": [1],  # type: ignore[dict-item]
        },
        logs=[span.LogRecord(5, {"event": "x" * 40})],
    )
    body, truncated = otlp_encoding.OtlpEncoder(max_value_length=20).encode([s])
    (out,) = decode(body).resource_spans[0].scope_spans[0].spans
    assert truncated == {"invalid_utf8": 2, "value_length": 2, "value_type": 2}
    assert out.name == "op\ufffd"
    attrs = attributes(out.attributes)
    assert attrs["surrogate"] == "bad\ufffd"
    assert attrs["long"] == "y" * 20
    assert attrs["huge"] == str(1 << 80)
    assert attrs["list"] == "[1]"
    assert out.events[0].name == "x" * 20


def test_cuts_are_counted_for_every_span_not_once_per_cached_value() -> None:
    """A field whose encoding cut or counted something never comes from the cache."""
    spans = [
        finished_span(tags={"surrogate": "bad\udc80", "long": "y" * 50, "huge": 1 << 80})
        for _ in range(3)
    ]
    encoder = otlp_encoding.OtlpEncoder(max_value_length=20)
    for _ in range(2):
        _, truncated = encoder.encode(spans)
        assert truncated == {"invalid_utf8": 3, "value_length": 3, "value_type": 3}


def test_a_cut_key_is_counted_for_every_span_not_once_per_cached_key() -> None:
    """A key longer than the value limit is cut in every span, so counted in every span."""
    spans = [finished_span("GET", tags={"a.long.key": 1}) for _ in range(3)]
    encoder = otlp_encoding.OtlpEncoder(max_value_length=8)
    encoder.encode(spans[:1])  # the resource's own cuts, once per encoder
    for _ in range(2):
        body, truncated = encoder.encode(spans)
        assert truncated == {"value_length": 3}
        out = decode(body).resource_spans[0].scope_spans[0].spans
        assert [attributes(s.attributes) for s in out] == [{"a.long.k": 1}] * 3


def test_span_names_come_from_a_cache_but_a_cut_name_is_counted_for_every_span() -> None:
    spans = [finished_span(name, tags={}) for name in ("GET /a", "x" * 20, "GET /a", "x" * 20)]
    encoder = otlp_encoding.OtlpEncoder(max_value_length=8)
    encoder.encode(spans[:1])  # the resource's own cuts, once per encoder
    for _ in range(2):
        body, truncated = encoder.encode(spans)
        assert truncated == {"value_length": 2}
        out = decode(body).resource_spans[0].scope_spans[0].spans
        assert [s.name for s in out] == ["GET /a", "x" * 8, "GET /a", "x" * 8]


def test_equal_values_of_other_types_keep_their_own_cached_fields() -> None:
    """``True == 1 == 1.0``: the attribute cache keeps them apart by type."""
    encoder = otlp_encoding.OtlpEncoder()
    for _ in range(2):  # cold, then every field from the cache
        spans = [finished_span(tags={"v": v}) for v in (1, True, 1.0, "1", 0, False, 0.0)]
        body, _ = encoder.encode(spans)
        out = decode(body).resource_spans[0].scope_spans[0].spans
        got = [attributes(s.attributes)["v"] for s in out]
        assert [type(v) for v in got] == [int, bool, float, str, int, bool, float]
        assert got == [1, True, 1.0, "1", 0, False, 0.0]


def test_partial_success_decoding() -> None:
    response = trace_service_pb2.ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 7
    response.partial_success.error_message = "too old"
    decoded = otlp.decode_partial_success(response.SerializeToString())
    assert decoded == otlp.PartialSuccess(7, "too old")
    assert otlp.decode_partial_success(b"") == otlp.PartialSuccess()
    with pytest.raises(pb.WireError):
        otlp.decode_partial_success(b"\x0a\x05ab")


@pytest.mark.parametrize("number", [0, 1, 127, 128, 300, 2**32, 2**63 - 1, -1, -(2**63)])
def test_varints_match_protobuf(number: int) -> None:
    message = common_pb2.AnyValue(int_value=number)
    assert b"\x18" + pb.varint(number) == message.SerializeToString()
    ((field, wire_type, decoded),) = list(pb.iter_fields(message.SerializeToString()))
    assert (field, wire_type) == (3, pb.VARINT)
    assert decoded == number & (2**64 - 1)


def test_iter_fields_reads_fixed_widths() -> None:
    data = b"\x09" + struct.pack("<Q", 2**64 - 1) + b"\x15" + struct.pack("<I", 7)
    assert list(pb.iter_fields(data)) == [(1, pb.FIXED64, 2**64 - 1), (2, pb.FIXED32, 7)]
    for bad in (b"\x09\x00", b"\x80", b"\x0b", b"\x00\x00"):
        with pytest.raises(pb.WireError):
            list(pb.iter_fields(bad))


async def test_exporter_posts_protobuf_with_headers_and_gzip(collector: Collector) -> None:
    exporter = otlp.OtlpHttpExporter(
        f"{collector.base}/v1/traces", headers={"Authorization": "Bearer s3cret"}, gzip=True
    )
    spans = gateway_spans(30)
    try:
        outcome = await exporter.export(spans, timeout=2)
    finally:
        await exporter.close()
    assert outcome == export.ExportOutcome.success()
    (received,) = collector.received
    assert received.path == "/v1/traces"
    assert received.headers["Content-Type"] == "application/x-protobuf"
    assert received.headers["Content-Encoding"] == "gzip"
    assert received.headers["Authorization"] == "Bearer s3cret"
    assert 0 < received.wire_size < len(received.body)
    out = decode(received.body).resource_spans[0].scope_spans[0].spans
    assert [s.span_id for s in out] == [s.span_id.to_bytes(8, "big") for s in spans]


async def test_retry_resends_the_same_body_and_counts_truncation_once(
    collector: Collector,
) -> None:
    bodies: list[bytes] = []

    async def busy_then_ok(request: web.Request, attempt: int) -> web.StreamResponse:
        bodies.append(await request.read())
        return web.Response(status=503 if attempt == 1 else 200)

    collector.respond = busy_then_ok
    exporter = otlp.OtlpHttpExporter(f"{collector.base}/v1/traces", gzip=False)
    spans = [finished_span(tags={"bad": "\ud800"})]
    try:
        first = await exporter.export(spans, timeout=2)
        second = await exporter.export(spans, timeout=2)
    finally:
        await exporter.close()
    assert first.result is export.ExportResult.RETRYABLE
    assert first.truncated == {"invalid_utf8": 1}
    assert second == export.ExportOutcome.success()
    assert len(bodies) == 2 and bodies[0] == bodies[1]


async def test_partial_success_counts_rejected_without_retry(collector: Collector) -> None:
    async def partial(request: web.Request, attempt: int) -> web.StreamResponse:
        response = trace_service_pb2.ExportTraceServiceResponse()
        response.partial_success.rejected_spans = 3
        response.partial_success.error_message = "spans too old"
        return web.Response(
            body=response.SerializeToString(), content_type="application/x-protobuf"
        )

    collector.respond = partial
    processor = engine.BatchingProcessor(
        otlp.OtlpHttpExporter(f"{collector.base}/v1/traces", gzip=False),
        engine.BatchSettings(max_batch_size=10, flush_interval_ms=20),
    )
    processor.start()
    for s in gateway_spans(10):
        processor.on_end(s)
    assert await processor.force_flush(timeout=3)
    await processor.shutdown(timeout=1)
    m = processor.metrics
    assert collector.attempts == 1
    assert m.dropped_count("rejected") == 3
    assert m.exported.value(m.labels) == 7


async def test_bad_request_is_a_failure_not_retried(collector: Collector) -> None:
    async def bad_request(request: web.Request, attempt: int) -> web.StreamResponse:
        return web.Response(status=400, text="bad protobuf")

    collector.respond = bad_request
    processor = engine.BatchingProcessor(
        otlp.OtlpHttpExporter(f"{collector.base}/v1/traces"),
        engine.BatchSettings(max_batch_size=5, flush_interval_ms=20, initial_backoff_ms=1),
    )
    processor.start()
    for s in gateway_spans(5):
        processor.on_end(s)
    assert await processor.force_flush(timeout=3)
    await processor.shutdown(timeout=1)
    m = processor.metrics
    assert collector.attempts == 1
    assert m.failure_count("http_400") == 1
    assert m.dropped_count("export_failed") == 5
    assert m.exported.value(m.labels) == 0
    assert RESOURCE.service_name == "api-gateway"


def test_huge_logs_and_odd_keys_are_cut_not_fatal() -> None:
    fields: dict[str, span.TagValue] = {f"f{i}": i for i in range(500)}
    fields["blob"] = "z" * 200_000
    s = finished_span(tags={7: "int key"}, logs=[span.LogRecord(9, fields)])  # type: ignore[dict-item]
    body, truncated = otlp_encoding.OtlpEncoder().encode([s])
    (out,) = decode(body).resource_spans[0].scope_spans[0].spans
    assert truncated == {"value_length": 1, "value_type": 1}
    assert attributes(out.attributes) == {"7": "int key"}
    event_attrs = attributes(out.events[0].attributes)
    assert len(event_attrs) == 501
    assert event_attrs["blob"] == "z" * 32768
