"""OTLP ``ExportTraceServiceRequest`` protobuf bytes into :mod:`.otlp_data` records.

Field numbers from opentelemetry-proto ``collector/trace/v1/trace_service.proto``,
``trace/v1/trace.proto`` and ``common/v1/common.proto``. proto3 rules, as the generated
parsers apply them: unknown fields (and known numbers with another wire type) are
skipped; a scalar field given twice keeps the last value; a message field given twice
(a span's ``status``, a resource) is merged. Scopes and ``dropped_*`` counts are read
past, though checked as protobuf checks them (strings must be UTF-8). Everything
malformed raises :class:`~gatetrace.runtime.reporting.protobuf_wire.WireError`
(bounds: :mod:`gatetrace.runtime.reporting.protobuf_read`).
"""

import struct
from collections.abc import Generator
from typing import Any

from gatetrace.gateway import otlp_data as _data
from gatetrace.gateway import stepwise
from gatetrace.runtime.reporting import protobuf_read as _read

__all__ = ["decode_request", "decode_steps"]

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_DOUBLE = struct.Struct("<d")
_fields = _read.fields
_text = _read.text


def decode_request(buf: bytes, *, max_spans: int) -> list[_data.OtlpResourceSpans]:
    """The request's resource spans; raises ``WireError`` (malformed) or
    :class:`~.otlp_data.TooManySpansError` (more than ``max_spans`` spans)."""
    return stepwise.drive(decode_steps(buf, _data.Steps(max_spans)))


def decode_steps(
    buf: bytes, steps: _data.Steps
) -> Generator[None, None, list[_data.OtlpResourceSpans]]:
    """:func:`decode_request` as a stepwise computation (:mod:`.stepwise`): it yields
    after every ``steps.step`` spans."""
    found: list[_data.OtlpResourceSpans] = []
    for number, wire_type, a, b in _fields(buf, 0, len(buf)):
        if number == 1 and wire_type == _LEN:
            found.append((yield from _resource_spans(buf, a, b, len(found), steps)))
    return found


def _resource_spans(
    buf: bytes, start: int, end: int, index: int, steps: _data.Steps
) -> Generator[None, None, _data.OtlpResourceSpans]:
    out = _data.OtlpResourceSpans()
    scope = 0
    for number, wire_type, a, b in _fields(buf, start, end, 1):
        if wire_type != _LEN:
            continue
        if number == 1:  # resource
            for n, w, ka, kb in _fields(buf, a, b, 2):
                if n == 1 and w == _LEN:
                    out.attributes.append(_key_value(buf, ka, kb, 3))
        elif number == 2:  # scope_spans
            yield from _scope_spans(buf, a, b, (index, scope, 0), out.spans, steps)
            scope += 1
        elif number == 3:  # schema_url: not kept, but a string must be UTF-8
            _text(buf, a, b)
    return out


def _check_scope(buf: bytes, start: int, end: int) -> None:
    """Read an ``InstrumentationScope`` (not kept) as strictly as protobuf does."""
    for number, wire_type, a, b in _fields(buf, start, end, 3):
        if wire_type == _LEN:
            if number in (1, 2):  # name, version
                _text(buf, a, b)
            elif number == 3:
                _key_value(buf, a, b, 4)


def _scope_spans(
    buf: bytes,
    start: int,
    end: int,
    where: tuple[int, int, int],
    spans: list[_data.OtlpSpan],
    steps: _data.Steps,
) -> Generator[None, None, None]:
    resource, scope, _ = where
    i = 0
    for number, wire_type, a, b in _fields(buf, start, end, 2):
        if wire_type != _LEN:
            continue
        if number == 2:
            spans.append(_span(buf, a, b, (resource, scope, i)))
            i += 1
            if steps.add():
                yield
        elif number == 1:
            _check_scope(buf, a, b)
        elif number == 3:  # schema_url
            _text(buf, a, b)


def _span(buf: bytes, start: int, end: int, where: tuple[int, int, int]) -> _data.OtlpSpan:
    span = _data.OtlpSpan(where=where)
    for number, wire_type, a, b in _fields(buf, start, end, 3):
        if wire_type == _LEN:
            if number == 1:
                span.trace_id = buf[a:b]
            elif number == 2:
                span.span_id = buf[a:b]
            elif number == 3:
                span.trace_state = _text(buf, a, b)
            elif number == 4:
                span.parent_span_id = buf[a:b]
            elif number == 5:
                span.name = _text(buf, a, b)
            elif number == 9:
                span.attributes.append(_key_value(buf, a, b, 4))
            elif number == 11:
                span.events.append(_event(buf, a, b))
            elif number == 13:
                span.links.append(_link(buf, a, b))
            elif number == 15:
                _status(buf, a, b, span)
        elif wire_type == _FIXED64:
            if number == 7:
                span.start_ns = a
            elif number == 8:
                span.end_ns = a
        elif wire_type == _VARINT:
            if number == 6:
                span.kind = _read.int64(a)
        elif wire_type == _FIXED32 and number == 16:
            span.flags = a
    return span


def _status(buf: bytes, start: int, end: int, span: _data.OtlpSpan) -> None:
    for number, wire_type, a, b in _fields(buf, start, end, 4):
        if number == 2 and wire_type == _LEN:
            span.status_message = _text(buf, a, b)
        elif number == 3 and wire_type == _VARINT:
            span.status_code = _read.int64(a)


def _event(buf: bytes, start: int, end: int) -> _data.OtlpEvent:
    event = _data.OtlpEvent()
    for number, wire_type, a, b in _fields(buf, start, end, 4):
        if number == 1 and wire_type == _FIXED64:
            event.time_ns = a
        elif number == 2 and wire_type == _LEN:
            event.name = _text(buf, a, b)
        elif number == 3 and wire_type == _LEN:
            event.attributes.append(_key_value(buf, a, b, 5))
    return event


def _link(buf: bytes, start: int, end: int) -> _data.OtlpLink:
    link = _data.OtlpLink()
    for number, wire_type, a, b in _fields(buf, start, end, 4):
        if wire_type == _LEN:
            if number == 1:
                link.trace_id = buf[a:b]
            elif number == 2:
                link.span_id = buf[a:b]
            elif number == 3:
                link.trace_state = _text(buf, a, b)
            elif number == 4:
                link.attributes.append(_key_value(buf, a, b, 5))
        elif number == 6 and wire_type == _FIXED32:
            link.flags = a
    return link


def _key_value(buf: bytes, start: int, end: int, depth: int) -> tuple[str, Any]:
    """A ``KeyValue`` with its value flattened to a tag value."""
    found = _plain_key_value(buf, start, end)
    if found is not None:
        return found
    key, value = _raw_key_value(buf, start, end, depth)
    return key, _data.flatten(value)


def _plain_key_value(buf: bytes, start: int, end: int) -> tuple[str, Any] | None:
    """The common shape, read without the field iterator: a short key, then a short
    ``AnyValue`` holding one string, bool, int or double, nothing else. ``None`` for
    any other shape (the general path reads it, with every check)."""
    if end - start < 4 or buf[start] != 0x0A:
        return None
    key_end = start + 2 + buf[start + 1]
    if buf[start + 1] >= 0x80 or key_end + 2 > end or buf[key_end] != 0x12:
        return None
    value_end = key_end + 2 + buf[key_end + 1]
    if buf[key_end + 1] >= 0x80 or value_end != end or value_end == key_end + 2:
        return None
    tag = buf[key_end + 2]
    pos = key_end + 3
    value: Any
    if tag == 0x0A:  # string_value
        if buf[pos] >= 0x80 or pos + 1 + buf[pos] != end:
            return None
        value = _text(buf, pos + 1, end)
    elif tag in (0x10, 0x18):  # bool_value, int_value
        number, after = _read.read_varint(buf, pos, end)
        if after != end:
            return None
        value = number != 0 if tag == 0x10 else _read.int64(number)
    elif tag == 0x21 and pos + 8 == end:  # double_value
        value = _DOUBLE.unpack_from(buf, pos)[0]
    else:
        return None
    return _text(buf, start + 2, key_end), value


def _raw_key_value(buf: bytes, start: int, end: int, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for number, wire_type, a, b in _fields(buf, start, end, depth):
        if wire_type != _LEN:
            continue
        if number == 1:
            key = _text(buf, a, b)
        elif number == 2:
            value = _any_value(buf, a, b, depth + 1)
    return key, value


def _any_value(buf: bytes, start: int, end: int, depth: int) -> Any:
    """An ``AnyValue`` as Python data (``None`` when no member is set; the last member
    given wins)."""
    value: Any = None
    for number, wire_type, a, b in _fields(buf, start, end, depth):
        if wire_type == _LEN:
            if number == 1:
                value = _text(buf, a, b)
            elif number == 5:  # ArrayValue
                value = [
                    _any_value(buf, va, vb, depth + 2)
                    for n, w, va, vb in _fields(buf, a, b, depth + 1)
                    if n == 1 and w == _LEN
                ]
            elif number == 6:  # KeyValueList
                value = dict(
                    _raw_key_value(buf, va, vb, depth + 2)
                    for n, w, va, vb in _fields(buf, a, b, depth + 1)
                    if n == 1 and w == _LEN
                )
            elif number == 7:
                value = buf[a:b]
        elif wire_type == _VARINT:
            if number == 2:
                value = a != 0
            elif number == 3:
                value = _read.int64(a)
        elif wire_type == _FIXED64 and number == 4:
            value = _read.double(a)
    return value
