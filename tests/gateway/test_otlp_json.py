"""OTLP/JSON, rule by rule (opentelemetry-proto ``docs/specification.md``, "JSON Protobuf
Encoding", and the proto3 JSON mapping it builds on)."""

import json
from typing import Any

import pytest

from gatetrace.gateway import otlp_data, otlp_json

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def decode(span: dict[str, Any], **top: Any) -> otlp_data.OtlpSpan:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}], **top}
    [resource] = otlp_json.decode_request(json.dumps(document).encode(), max_spans=10)
    [decoded] = resource.spans
    return decoded


def attribute(value: dict[str, Any]) -> Any:
    return dict(decode({"attributes": [{"key": "k", "value": value}]}).attributes)["k"]


def test_ids_are_case_insensitive_hex() -> None:
    lower = decode({"traceId": TRACE, "spanId": SPAN, "parentSpanId": SPAN})
    upper = decode({"traceId": TRACE.upper(), "spanId": SPAN.upper(), "parentSpanId": SPAN})
    assert lower.trace_id == upper.trace_id == bytes.fromhex(TRACE)
    assert lower.span_id == upper.span_id == lower.parent_span_id == bytes.fromhex(SPAN)


def test_link_ids_are_hex_too() -> None:
    [link] = decode({"links": [{"traceId": TRACE.upper(), "spanId": SPAN}]}).links
    assert (link.trace_id, link.span_id) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))


def test_ids_in_base64_are_refused() -> None:
    with pytest.raises(otlp_json.OtlpJsonError, match=r"spans\[0\]\.traceId: expected hex"):
        decode({"traceId": "W47/95gDgQPSabYzgT/GDA=="})


def test_enums_are_integers() -> None:
    decoded = decode({"kind": 2, "status": {"code": 2}})
    assert (decoded.kind, decoded.status_code) == (2, 2)


def test_enum_names_are_read_as_protobufs_json_parsers_read_them() -> None:
    decoded = decode({"kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_OK"}})
    assert (decoded.kind, decoded.status_code) == (3, 1)
    with pytest.raises(otlp_json.OtlpJsonError, match=r"spans\[0\]\.kind: expected an integer"):
        decode({"kind": "CLIENT"})


def test_unknown_fields_are_ignored_at_every_level() -> None:
    decoded = decode(
        {"traceId": TRACE, "futureField": {"x": [1]}, "status": {"code": 1, "newer": True}},
        futureTop=[1, 2],
    )
    assert (decoded.trace_id, decoded.status_code) == (bytes.fromhex(TRACE), 1)


def test_original_snake_case_names_are_unknown_fields() -> None:
    decoded = decode({"trace_id": TRACE, "start_time_unix_nano": "5", "name": "n"})
    assert (decoded.trace_id, decoded.start_ns, decoded.name) == (b"", 0, "n")


@pytest.mark.parametrize("value", [1700000000000000001, "1700000000000000001"])
def test_64_bit_integers_as_numbers_or_decimal_strings(value: Any) -> None:
    decoded = decode({"startTimeUnixNano": value, "endTimeUnixNano": value})
    assert decoded.start_ns == decoded.end_ns == 1700000000000000001


@pytest.mark.parametrize("value", [-5, "-5"])
def test_int_values_are_signed(value: Any) -> None:
    assert attribute({"intValue": value}) == -5


def test_integers_outside_their_field_are_refused() -> None:
    with pytest.raises(otlp_json.OtlpJsonError, match="outside the field's 64-bit range"):
        decode({"startTimeUnixNano": str(1 << 64)})
    with pytest.raises(otlp_json.OtlpJsonError, match="outside the field's 64-bit range"):
        decode({"startTimeUnixNano": -1})
    with pytest.raises(otlp_json.OtlpJsonError, match="expected an integer"):
        decode({"startTimeUnixNano": 1.5})


def test_null_is_the_default() -> None:
    decoded = decode({"name": None, "traceId": None, "attributes": None, "status": None})
    assert (decoded.name, decoded.trace_id, decoded.attributes) == ("", b"", [])


def test_bytes_values_are_base64_standard_or_url_safe() -> None:
    assert attribute({"bytesValue": "+/8="}) == "+/8="  # kept as base64 text
    assert attribute({"bytesValue": "-_8"}) == "+/8="
    with pytest.raises(otlp_json.OtlpJsonError, match="expected base64"):
        attribute({"bytesValue": "not base64!"})


def test_arrays_and_kvlists_become_json_text() -> None:
    value = {
        "arrayValue": {
            "values": [
                {"stringValue": "a"},
                {"intValue": "2"},
                {"kvlistValue": {"values": [{"key": "x", "value": {"boolValue": True}}]}},
            ]
        }
    }
    assert attribute(value) == '["a",2,{"x":true}]'


def test_wrong_types_name_their_path() -> None:
    with pytest.raises(
        otlp_json.OtlpJsonError, match=r"spans\[0\]\.attributes\[0\]\.value\.boolValue"
    ):
        decode({"attributes": [{"key": "k", "value": {"boolValue": "yes"}}]})
    with pytest.raises(
        otlp_json.OtlpJsonError, match=r"spans\[0\]\.events\[0\]\.name: expected a string"
    ):
        decode({"events": [{"name": 7}]})
    with pytest.raises(otlp_json.OtlpJsonError, match="body: expected an object"):
        otlp_json.decode_request(b"[]", max_spans=1)


def test_nesting_is_bounded() -> None:
    deep = {"stringValue": "x"}
    for _ in range(40):
        deep = {"arrayValue": {"values": [deep]}}
    with pytest.raises(otlp_json.OtlpJsonError, match="nests deeper than"):
        attribute(deep)


def test_too_many_spans_stop_the_decoding() -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{}] * 11}]}]}).encode()
    with pytest.raises(otlp_data.TooManySpansError):
        otlp_json.decode_request(body, max_spans=10)
