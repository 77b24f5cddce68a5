"""The zipkin reporter: JSON v2 checked against a JSON Schema of the zipkin-api Span.

The schema is written from zipkin-api's ``zipkin2-api.yaml`` (``ListOfSpans``,
``Span``, ``Endpoint``, ``Annotation``, ``Tags``), with the id patterns
anchored (the spec's are not) and no unknown properties allowed.
"""

import json

import jsonschema
import pytest
from reportertools import (
    RESOURCE,
    RESOURCE_ZIPKIN_TAGS,
    Collector,
    finished_span,
    free_port,
    gateway_spans,
)

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.reporting import engine, export, zipkin

ENDPOINT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "serviceName": {"type": "string"},
        "ipv4": {"type": "string", "format": "ipv4"},
        "ipv6": {"type": "string", "format": "ipv6"},
        "port": {"type": "integer"},
    },
}
SPAN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["traceId", "id"],
    "properties": {
        "traceId": {"type": "string", "pattern": "^[a-f0-9]{16,32}$"},
        "name": {"type": "string"},
        "parentId": {"type": "string", "pattern": "^[a-f0-9]{16}$"},
        "id": {"type": "string", "pattern": "^[a-f0-9]{16}$"},
        "kind": {"enum": ["CLIENT", "SERVER", "PRODUCER", "CONSUMER"]},
        "timestamp": {"type": "integer", "minimum": 1},
        "duration": {"type": "integer", "minimum": 1},
        "debug": {"type": "boolean"},
        "shared": {"type": "boolean"},
        "localEndpoint": ENDPOINT_SCHEMA,
        "remoteEndpoint": ENDPOINT_SCHEMA,
        "annotations": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["timestamp", "value"],
                "properties": {"timestamp": {"type": "integer"}, "value": {"type": "string"}},
            },
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
LIST_OF_SPANS = {"type": "array", "items": SPAN_SCHEMA}
VALIDATOR = jsonschema.Draft202012Validator(
    LIST_OF_SPANS, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def decode(body: bytes) -> list[dict[str, object]]:
    spans = json.loads(body.decode("utf-8"))  # strict: fails on invalid UTF-8
    VALIDATOR.validate(spans)
    return spans  # type: ignore[no-any-return]


def test_schema_rejects_what_zipkin_rejects() -> None:
    """The schema is not vacuous: unanchored or uppercase ids and string tags are caught."""
    good = {"traceId": "a" * 32, "id": "b" * 16}
    VALIDATOR.validate([good])
    for bad in (
        {**good, "traceId": "A" * 32},
        {**good, "id": "b" * 16 + "x"},
        {**good, "tags": {"n": 1}},
        {**good, "kind": "INTERNAL"},
        {**good, "duration": 0},
        {**good, "localEndpoint": {"ipv4": "999.1.1.1"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            VALIDATOR.validate([bad])


def test_every_field_round_trips() -> None:
    parent = finished_span("parent")
    linked = spancontext.SpanContext(0xABC, 0xDEF, True)
    s = finished_span(
        "GET /users",
        kind=span.SpanKind.CLIENT,
        trace_id=0x1234,
        parent_id=parent.span_id,
        tags={
            "s": "text",
            "b": True,
            "f": False,
            "i": -42,
            "big": 1 << 70,
            "d": 2.5,
            "server.address": "users.shop",
            "network.peer.address": "10.9.8.7",
            "server.port": 8443,
            "peer.service": "users",
        },
        logs=[
            span.LogRecord(1_700_000_000_200_000_999, {"event": "retry"}),
            span.LogRecord(1_700_000_000_300_000_000, {"event": "error", "attempt": 2}),
        ],
        references=(span.Reference(span.ReferenceType.FOLLOWS_FROM, linked),),
        debug=True,
        status=span.Status(span.StatusCode.ERROR, "upstream reset"),
        start_ns=1_700_000_000_123_456_789,
        duration_ns=400,
    )
    body, truncated = zipkin.ZipkinEncoder().encode([s])
    assert truncated == {}
    (out,) = decode(body)
    assert out["traceId"] == "00000000000000000000000000001234"
    assert out["id"] == f"{s.span_id:016x}"
    assert out["parentId"] == f"{parent.span_id:016x}"
    assert out["name"] == "GET /users"
    assert out["kind"] == "CLIENT"
    assert out["timestamp"] == 1_700_000_000_123_456
    assert out["duration"] == 1  # 400 ns rounds down to 0 µs; Zipkin needs >= 1
    assert out["debug"] is True
    assert "shared" not in out
    assert out["localEndpoint"] == {"serviceName": "api-gateway", "ipv4": "10.1.2.3", "port": 8080}
    assert out["remoteEndpoint"] == {"serviceName": "users", "ipv4": "10.9.8.7", "port": 8443}
    assert out["tags"] == {
        "s": "text",
        "b": "true",
        "f": "false",
        "i": "-42",
        "big": str(1 << 70),
        "d": "2.5",
        "server.address": "users.shop",
        "network.peer.address": "10.9.8.7",
        "server.port": "8443",
        "peer.service": "users",
        **RESOURCE_ZIPKIN_TAGS,
        "otel.status_code": "ERROR",
        "error": "upstream reset",
    }
    assert out["annotations"] == [
        {"timestamp": 1_700_000_000_200_000, "value": "retry"},  # an event without attributes
        {"timestamp": 1_700_000_000_300_000, "value": '{"error":{"attempt":2}}'},
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (span.SpanKind.SERVER, "SERVER"),
        (span.SpanKind.CLIENT, "CLIENT"),
        (span.SpanKind.PRODUCER, "PRODUCER"),
        (span.SpanKind.CONSUMER, "CONSUMER"),
        (span.SpanKind.INTERNAL, None),
    ],
)
def test_kinds(kind: span.SpanKind, expected: str | None) -> None:
    (out,) = decode(zipkin.ZipkinEncoder().encode([finished_span(kind=kind)])[0])
    assert out.get("kind") == expected
    assert "parentId" not in out


def test_remote_endpoint_from_host_name_and_ipv6() -> None:
    s = finished_span(
        kind=span.SpanKind.CLIENT,
        tags={"server.address": "users.shop.svc", "network.peer.address": "::1", "server.port": 80},
    )
    (out,) = decode(zipkin.ZipkinEncoder().encode([s])[0])
    assert out["remoteEndpoint"] == {"serviceName": "users.shop.svc", "ipv6": "::1", "port": 80}
    server = finished_span(kind=span.SpanKind.SERVER, tags={"server.address": "x"})
    (out,) = decode(zipkin.ZipkinEncoder().encode([server])[0])
    assert "remoteEndpoint" not in out


def test_bad_values_are_encoded_and_counted() -> None:
    resource = span.Resource("svc\udcff", (("ip", "not-an-ip"), ("port", "99999")))
    s = finished_span(
        "op\ud800",
        resource=resource,
        tags={
            "surrogate": "bad\udc80value",
            "long": "x" * 100,
            "object": [1, 2],  # type: ignore[dict-item]
            "none": None,  # type: ignore[dict-item]
        },
        logs=[span.LogRecord(1, {"event": "e", "blob": b"\xff", "n": 1.5})],  # type: ignore[dict-item]
    )
    body, truncated = zipkin.ZipkinEncoder(max_value_length=10).encode([s])
    (out,) = decode(body)
    assert truncated == {"invalid_utf8": 1, "value_length": 1, "value_type": 3}
    assert out["name"] == "op\ufffd"
    assert out["localEndpoint"] == {"serviceName": "svc\ufffd"}
    tags = out["tags"]
    assert isinstance(tags, dict)
    assert tags["surrogate"] == "bad\ufffdvalue"
    assert tags["long"] == "x" * 10
    assert tags["object"] == "[1, 2]"
    assert tags["none"] == "None"


async def test_exporter_posts_gzip_json(collector: Collector) -> None:
    exporter = zipkin.ZipkinExporter(
        f"{collector.base}/api/v2/spans", gzip=True, headers={"X-Tenant": "shop"}
    )
    spans = gateway_spans(20)
    try:
        outcome = await exporter.export(spans, timeout=2)
    finally:
        await exporter.close()
    assert outcome.result is export.ExportResult.SUCCESS
    (request,) = collector.received
    assert request.path == "/api/v2/spans"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["X-Tenant"] == "shop"
    assert 0 < request.wire_size < len(request.body)
    decoded = decode(request.body)
    assert [d["id"] for d in decoded] == [f"{s.span_id:016x}" for s in spans]


async def test_exporter_without_gzip_and_down_backend() -> None:
    exporter = zipkin.ZipkinExporter(f"http://127.0.0.1:{free_port()}/api/v2/spans", gzip=False)
    try:
        outcome = await exporter.export([finished_span()], timeout=2)
    finally:
        await exporter.close()
    assert outcome.result is export.ExportResult.RETRYABLE
    assert outcome.reason == "connection_refused"


async def test_through_the_engine(collector: Collector) -> None:
    processor = engine.BatchingProcessor(
        zipkin.ZipkinExporter(f"{collector.base}/api/v2/spans"),
        engine.BatchSettings(max_batch_size=10, flush_interval_ms=50),
    )
    processor.start()
    spans = gateway_spans(25)
    for s in spans:
        processor.on_end(s)
    assert await processor.force_flush(timeout=3)
    await processor.shutdown(timeout=1)
    ids = [d["id"] for r in collector.received for d in decode(r.body)]
    assert ids == [f"{s.span_id:016x}" for s in spans]
    assert [len(decode(r.body)) for r in collector.received] == [10, 10, 5]
    assert processor.metrics.exported.value(processor.metrics.labels) == 25
    assert RESOURCE.service_name == "api-gateway"


def test_huge_logs_and_non_finite_numbers() -> None:
    fields: dict[str, span.TagValue] = {"event": "dump", "nan": float("nan"), "inf": float("inf")}
    fields["blob"] = "z" * 200_000
    s = finished_span(tags={"ratio": float("nan")}, logs=[span.LogRecord(9_000, fields)])
    body, truncated = zipkin.ZipkinEncoder().encode([s])
    (out,) = decode(body)
    assert truncated == {"value_length": 1}
    assert out["tags"] == {"ratio": "nan", **RESOURCE_ZIPKIN_TAGS}
    annotations = out["annotations"]
    assert isinstance(annotations, list)
    value = json.loads(annotations[0]["value"])
    assert value == {"dump": {"nan": "nan", "inf": "inf", "blob": "z" * 32768}}


def test_odd_tag_keys_become_strings() -> None:
    s = finished_span(tags={7: "int key", (1, 2): "tuple key", "ok": True})  # type: ignore[dict-item]
    body, truncated = zipkin.ZipkinEncoder().encode([s])
    (out,) = decode(body)
    assert out["tags"] == {
        "7": "int key",
        "(1, 2)": "tuple key",
        "ok": "true",
        **RESOURCE_ZIPKIN_TAGS,
    }
    assert truncated == {"value_type": 1}
