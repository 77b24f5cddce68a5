"""How each output format carries the semantic-convention parts of a span, the way the
OpenTelemetry Collector's translators write them: the sampler tags under Jaeger's names, the
status as ``otel.status_code``/``otel.status_description`` (Jaeger) or ``error`` (Zipkin),
resource attributes as Zipkin tags, events as named annotations, ``schema_url`` in OTLP.

Every check decodes with code that is not gatetrace's (Apache thrift into jaeger-client's
types, opentelemetry-proto's classes, ``json``)."""

import json

from jaeger_testtools import decode_binary_batch, decode_emit_batch, make_span, tag_dict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from reportertools import RESOURCE_ZIPKIN_TAGS, finished_span

from gatetrace.gateway import jaeger_json
from gatetrace.runtime import process_resource, span, tracer
from gatetrace.runtime.reporting import jaeger_compact, jaeger_thrift, otlp_encoding
from gatetrace.runtime.reporting import zipkin_encoding as zipkin

SAMPLED_ROOT = {tracer.SAMPLER_TYPE: "probabilistic", tracer.SAMPLER_PARAM: 0.25, "k": "v"}


def _compact_tags(s: span.Span) -> dict[str, object]:
    encoder = jaeger_compact.CompactEncoder(jaeger_thrift.ValueSanitizer())
    message = encoder.message(encoder.process(s.resource), [encoder.span(s)], 1, (0, 0, 0))
    (got,) = decode_emit_batch(message).batch.spans
    return tag_dict(got.tags)


def _binary_tags(s: span.Span) -> dict[str, object]:
    clean = jaeger_thrift.ValueSanitizer()
    batch = jaeger_thrift.to_batch(
        jaeger_thrift.to_process(s.resource, clean), [s], clean, seq_no=1, stats=(0, 0, 0)
    )
    (got,) = decode_binary_batch(jaeger_thrift.serialize_binary(batch)).batch.spans
    return tag_dict(got.tags)


def test_jaeger_names_the_sampler_tags_as_its_clients_do() -> None:
    s = make_span(tags=SAMPLED_ROOT)
    expected = {
        "sampler.type": ("STRING", "probabilistic"),
        "sampler.param": ("DOUBLE", 0.25),
        "k": ("STRING", "v"),
        "span.kind": ("STRING", "server"),
    }
    assert _compact_tags(s) == expected
    assert _binary_tags(s) == expected
    query = {t["key"]: t["value"] for t in jaeger_json.span_json(s, "p1")["tags"]}
    assert query == {
        "sampler.type": "probabilistic",
        "sampler.param": 0.25,
        "k": "v",
        "span.kind": "server",
    }


def test_jaeger_status_tags() -> None:
    failed = make_span(status=span.Status(span.StatusCode.ERROR, "upstream 503"))
    expected_error = {
        "span.kind": ("STRING", "server"),
        "error": ("BOOL", True),
        "otel.status_code": ("STRING", "ERROR"),
        "otel.status_description": ("STRING", "upstream 503"),
    }
    assert _compact_tags(failed) == expected_error
    assert _binary_tags(failed) == expected_error
    ok = make_span(status=span.Status(span.StatusCode.OK))
    assert _compact_tags(ok) == {
        "span.kind": ("STRING", "server"),
        "otel.status_code": ("STRING", "OK"),
    }
    unset = make_span()
    assert _compact_tags(unset) == {"span.kind": ("STRING", "server")}


def _zipkin(s: span.Span) -> dict[str, object]:
    body, _ = zipkin.ZipkinEncoder().encode([s])
    (out,) = json.loads(body)
    assert isinstance(out, dict)
    return out


def test_zipkin_carries_resource_attributes_as_tags_and_a_span_tag_wins() -> None:
    plain = _zipkin(finished_span(tags={"k": "v"}))
    assert plain["tags"] == {"k": "v", **RESOURCE_ZIPKIN_TAGS}
    assert "service.name" not in plain["tags"]  # type: ignore[operator]
    overlapping = _zipkin(finished_span(tags={"replica": "from-span"}))
    assert overlapping["tags"] == {**RESOURCE_ZIPKIN_TAGS, "replica": "from-span"}


def test_zipkin_status_error_and_ok() -> None:
    failed = _zipkin(finished_span(tags={}, status=span.Status(span.StatusCode.ERROR, "boom")))
    assert failed["tags"] == {**RESOURCE_ZIPKIN_TAGS, "otel.status_code": "ERROR", "error": "boom"}
    no_text = _zipkin(finished_span(tags={}, status=span.Status(span.StatusCode.ERROR)))
    assert no_text["tags"] == {**RESOURCE_ZIPKIN_TAGS, "otel.status_code": "ERROR", "error": ""}
    ok = _zipkin(finished_span(tags={}, status=span.Status(span.StatusCode.OK)))
    assert ok["tags"] == {**RESOURCE_ZIPKIN_TAGS, "otel.status_code": "OK"}


def test_an_exception_event_in_every_format() -> None:
    try:
        raise KeyError("card")
    except KeyError as e:
        event = span.exception_event(e)
    s = finished_span(tags={}, logs=[span.LogRecord(1_700_000_000_200_000_000, event)])
    assert event["event"] == "exception"
    assert event["exception.type"] == "KeyError"
    assert event["exception.message"] == "'card'"
    (annotation,) = _zipkin(s)["annotations"]  # type: ignore[misc]
    assert json.loads(annotation["value"]) == {
        "exception": {"exception.type": "KeyError", "exception.message": "'card'"}
    }
    body, _ = otlp_encoding.OtlpEncoder().encode([s])
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    (otlp_event,) = request.resource_spans[0].scope_spans[0].spans[0].events
    assert otlp_event.name == "exception"
    assert {kv.key: kv.value.string_value for kv in otlp_event.attributes} == {
        "exception.type": "KeyError",
        "exception.message": "'card'",
    }


def test_otlp_carries_the_schema_url_on_resource_and_scope() -> None:
    detected = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=gw-1,k8s.namespace.name=edge"},
        default_service="gw",
        component="gateway",
    )
    resource = span.Resource("gw", detected.attributes, schema_url=process_resource.SCHEMA_URL)
    body, _ = otlp_encoding.OtlpEncoder().encode([finished_span(resource=resource)])
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    assert request.SerializeToString() == body
    (resource_spans,) = request.resource_spans
    assert resource_spans.schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert resource_spans.scope_spans[0].schema_url == "https://opentelemetry.io/schemas/1.26.0"
    attrs = {kv.key: kv.value for kv in resource_spans.resource.attributes}
    assert attrs["k8s.pod.name"].string_value == "gw-1"
    assert attrs["process.pid"].int_value > 0
    # a resource without a schema leaves the fields out (no empty string on the wire)
    body, _ = otlp_encoding.OtlpEncoder().encode([finished_span()])
    request.ParseFromString(body)
    assert request.resource_spans[0].schema_url == ""
