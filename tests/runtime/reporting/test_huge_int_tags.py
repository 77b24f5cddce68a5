"""An int tag with more digits than CPython converts to decimal (4,300 by default) is span
content like any other: every encoder writes the span and counts it, none raises (a raise
would drop the whole batch as an encoding error)."""

import json

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from reportertools import finished_span

from gatetrace.runtime.reporting import (
    jaeger_compact,
    jaeger_thrift,
    otlp_encoding,
    zipkin_encoding,
)

HUGE = 10**5000


def test_zipkin_writes_a_huge_int_tag_in_hex_and_counts_it() -> None:
    spans = [finished_span(tags={"n": HUGE, "ok": 1}), finished_span(tags={"ok": 2})]
    body, truncated = zipkin_encoding.ZipkinEncoder().encode(spans)
    first, second = json.loads(body)
    assert first["tags"]["n"] == hex(HUGE)
    assert first["tags"]["ok"] == "1" and second["tags"]["ok"] == "2"
    assert truncated == {"value_type": 1}


def test_otlp_writes_a_huge_int_tag_in_hex_and_counts_it() -> None:
    body, truncated = otlp_encoding.OtlpEncoder().encode([finished_span(tags={"n": HUGE})])
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    (kv,) = request.resource_spans[0].scope_spans[0].spans[0].attributes
    assert kv.value.string_value == hex(HUGE)
    assert truncated == {"value_type": 1}


def test_jaeger_writes_a_huge_int_tag_as_a_string_and_counts_it() -> None:
    clean = jaeger_thrift.ValueSanitizer(max_string_bytes=1 << 20)
    (tag,) = [
        t
        for t in jaeger_thrift.to_span(finished_span(tags={"n": HUGE}), clean).tags
        if t.key == "n"
    ]
    assert tag.vStr == hex(HUGE)
    assert jaeger_compact.CompactEncoder(clean).span(finished_span(tags={"n": HUGE}))
    assert clean.take() == {"value_range": 2}


def test_zipkin_logs_with_a_huge_int_are_encoded() -> None:
    from gatetrace.runtime import span

    s = finished_span(logs=[span.LogRecord(5, {"event": "retry", "n": HUGE})])
    (out,) = json.loads(zipkin_encoding.ZipkinEncoder().encode([s])[0])
    assert hex(HUGE) in out["annotations"][0]["value"]


def test_zipkin_remote_endpoint_from_a_huge_int_is_encoded() -> None:
    from gatetrace.runtime import span

    client = finished_span(kind=span.SpanKind.CLIENT, tags={"server.address": HUGE})
    (out,) = json.loads(zipkin_encoding.ZipkinEncoder().encode([client])[0])
    assert out["remoteEndpoint"] == {"serviceName": hex(HUGE)}
