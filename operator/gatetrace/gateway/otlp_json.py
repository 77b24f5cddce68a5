"""OTLP/JSON ``ExportTraceServiceRequest`` into :mod:`.otlp_data` records.

The proto3 JSON mapping with OTLP's deviations (opentelemetry-proto
``docs/specification.md``, "JSON Protobuf Encoding"):

* ``traceId``, ``spanId``, ``parentSpanId`` (and a link's ids) are case-insensitive hex,
  not base64; other ``bytes`` (``bytesValue``) are base64, standard or URL-safe;
* keys are lowerCamelCase; keys with other names, the original snake_case ones included,
  are unknown fields and ignored, as the spec requires of receivers;
* 64-bit integers (``startTimeUnixNano``, ``intValue``...) as decimal strings or numbers;
  doubles as numbers or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* enums (``kind``, ``status.code``) as integers; their names (``SPAN_KIND_SERVER``), which
  the spec forbids senders to use, are read too, as protobuf's own JSON parsers read them;
* ``null`` is the field's default.

A value of the wrong type raises :class:`OtlpJsonError` naming its path
(``resourceSpans[0].scopeSpans[0].spans[3].startTimeUnixNano: ...``).
"""

import base64
import binascii
import math
from collections.abc import Generator
from typing import Any

from gatetrace.gateway import otlp_data as _data
from gatetrace.gateway import stepwise
from gatetrace.policy import messages as _messages

__all__ = ["OtlpJsonError", "decode_request", "decode_steps"]

MAX_DEPTH = 64
"""JSON nesting accepted (a span attribute's value sits at depth 11; arrays nest deeper)."""
_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_UINT64 = 1 << 64


class OtlpJsonError(ValueError):
    """A JSON body that is not an ``ExportTraceServiceRequest``."""


def decode_request(body: bytes, *, max_spans: int) -> list[_data.OtlpResourceSpans]:
    """The request's resource spans; raises :class:`OtlpJsonError` or
    :class:`~.otlp_data.TooManySpansError`."""
    return stepwise.drive(decode_steps(body, _data.Steps(max_spans)))


def decode_steps(
    body: bytes, steps: _data.Steps
) -> Generator[None, None, list[_data.OtlpResourceSpans]]:
    """:func:`decode_request` as a stepwise computation (:mod:`.stepwise`): it yields
    after every ``steps.step`` spans (the JSON parse itself is one step)."""
    try:
        document = _messages.load_json(body, max_depth=MAX_DEPTH)
    except ValueError as e:
        raise OtlpJsonError(f"body: {e}") from None
    top = _object(document, "body")
    found: list[_data.OtlpResourceSpans] = []
    for r, item in enumerate(_list(top.get("resourceSpans"), "resourceSpans")):
        found.append((yield from _resource_spans(item, r, steps)))
    return found


def _echo(value: Any) -> str:
    return _messages.echo(value) if isinstance(value, str) else type(value).__name__


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpJsonError(f"{where}: expected an object, got {_echo(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpJsonError(f"{where}: expected an array, got {_echo(value)}")
    return value


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise OtlpJsonError(f"{where}: expected a string, got {_echo(value)}")
    return value


def _integer(value: Any, where: str, *, bits: int = 64, signed: bool = False) -> int:
    """An integer field: a number without a fraction, or its decimal string."""
    if value is None:
        return 0
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().lstrip("-").isdigit()
    ):
        number = int(value)
    if number is None:
        raise OtlpJsonError(f"{where}: expected an integer, got {_echo(value)}")
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= number <= high:
        raise OtlpJsonError(f"{where}: {number} is outside the field's {bits}-bit range")
    return number


def _enum(value: Any, names: dict[str, int], where: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _integer(value, where, bits=32, signed=True)


def _hex_id(value: Any, where: str) -> bytes:
    text = _string(value, where)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise OtlpJsonError(f"{where}: expected hex, got {_messages.echo(text)}") from None


def _base64(value: Any, where: str) -> bytes:
    text = _string(value, where)
    alphabet = b"-_" if "-" in text or "_" in text else None
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise OtlpJsonError(f"{where}: expected base64, got {_messages.echo(text)}") from None


def _double(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise OtlpJsonError(f"{where}: expected a number, got {_echo(value)}")


def _resource_spans(
    value: Any, r: int, steps: _data.Steps
) -> Generator[None, None, _data.OtlpResourceSpans]:
    where = f"resourceSpans[{r}]"
    doc = _object(value, where)
    out = _data.OtlpResourceSpans()
    resource = _object(doc.get("resource"), f"{where}.resource")
    out.attributes = _attributes(resource.get("attributes"), f"{where}.resource.attributes")
    for s, scope in enumerate(_list(doc.get("scopeSpans"), f"{where}.scopeSpans")):
        scope_where = f"{where}.scopeSpans[{s}]"
        spans = _object(scope, scope_where).get("spans")
        for i, span in enumerate(_list(spans, f"{scope_where}.spans")):
            out.spans.append(_span(span, (r, s, i), f"{scope_where}.spans[{i}]"))
            if steps.add():
                yield
    return out


def _span(value: Any, place: tuple[int, int, int], where: str) -> _data.OtlpSpan:
    doc = _object(value, where)
    get = doc.get
    status = _object(get("status"), f"{where}.status")
    return _data.OtlpSpan(
        where=place,
        trace_id=_hex_id(get("traceId"), f"{where}.traceId"),
        span_id=_hex_id(get("spanId"), f"{where}.spanId"),
        trace_state=_string(get("traceState"), f"{where}.traceState"),
        parent_span_id=_hex_id(get("parentSpanId"), f"{where}.parentSpanId"),
        flags=_integer(get("flags"), f"{where}.flags", bits=32),
        name=_string(get("name"), f"{where}.name"),
        kind=_enum(get("kind"), _KINDS, f"{where}.kind"),
        start_ns=_integer(get("startTimeUnixNano"), f"{where}.startTimeUnixNano"),
        end_ns=_integer(get("endTimeUnixNano"), f"{where}.endTimeUnixNano"),
        attributes=_attributes(get("attributes"), f"{where}.attributes"),
        events=[
            _event(event, f"{where}.events[{e}]")
            for e, event in enumerate(_list(get("events"), f"{where}.events"))
        ],
        links=[
            _link(link, f"{where}.links[{n}]")
            for n, link in enumerate(_list(get("links"), f"{where}.links"))
        ],
        status_code=_enum(status.get("code"), _STATUS_CODES, f"{where}.status.code"),
        status_message=_string(status.get("message"), f"{where}.status.message"),
    )


def _event(value: Any, where: str) -> _data.OtlpEvent:
    doc = _object(value, where)
    return _data.OtlpEvent(
        time_ns=_integer(doc.get("timeUnixNano"), f"{where}.timeUnixNano"),
        name=_string(doc.get("name"), f"{where}.name"),
        attributes=_attributes(doc.get("attributes"), f"{where}.attributes"),
    )


def _link(value: Any, where: str) -> _data.OtlpLink:
    doc = _object(value, where)
    return _data.OtlpLink(
        trace_id=_hex_id(doc.get("traceId"), f"{where}.traceId"),
        span_id=_hex_id(doc.get("spanId"), f"{where}.spanId"),
        trace_state=_string(doc.get("traceState"), f"{where}.traceState"),
        attributes=_attributes(doc.get("attributes"), f"{where}.attributes"),
        flags=_integer(doc.get("flags"), f"{where}.flags", bits=32),
    )


def _attributes(value: Any, where: str) -> _data.Attributes:
    return [
        (key, _data.flatten(item))
        for key, item in (
            _key_value(kv, f"{where}[{k}]") for k, kv in enumerate(_list(value, where))
        )
    ]


def _key_value(value: Any, where: str) -> tuple[str, Any]:
    doc = _object(value, where)
    return _string(doc.get("key"), f"{where}.key"), _any_value(doc.get("value"), f"{where}.value")


def _any_value(value: Any, where: str) -> Any:
    """An ``AnyValue`` as Python data; ``None`` when no member is set."""
    doc = _object(value, where)
    found: Any = None
    for key, item in doc.items():
        if item is None:
            continue
        if key == "stringValue":
            found = _string(item, f"{where}.stringValue")
        elif key == "boolValue":
            if not isinstance(item, bool):
                raise OtlpJsonError(f"{where}.boolValue: expected true or false, got {_echo(item)}")
            found = item
        elif key == "intValue":
            found = _integer(item, f"{where}.intValue", signed=True)
        elif key == "doubleValue":
            found = _double(item, f"{where}.doubleValue")
        elif key == "bytesValue":
            found = _base64(item, f"{where}.bytesValue")
        elif key == "arrayValue":
            values = _object(item, f"{where}.arrayValue").get("values")
            found = [
                _any_value(v, f"{where}.arrayValue.values[{i}]")
                for i, v in enumerate(_list(values, f"{where}.arrayValue.values"))
            ]
        elif key == "kvlistValue":
            values = _object(item, f"{where}.kvlistValue").get("values")
            found = dict(
                _key_value(kv, f"{where}.kvlistValue.values[{i}]")
                for i, kv in enumerate(_list(values, f"{where}.kvlistValue.values"))
            )
    return found
