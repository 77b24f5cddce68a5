"""The Jaeger thrift types (loaded by thriftpy2 from our ``jaeger.thrift``) and span mapping.

Both Jaeger reporters share what this module decides: how a gatetrace
:class:`~gatetrace.runtime.span.Span` maps onto the Jaeger model (ids split
into signed high/low i64, µs times, flags, the ``span.kind`` and ``error``
tags Jaeger clients add, typed tags) and how awkward values are made
encodable instead of raising (:class:`ValueSanitizer`). The collector path
builds thriftpy2 objects with :func:`to_batch` and serialises them with
thriftpy2's Cython binary protocol (:func:`serialize_binary`); the agent path
uses the hand-written compact encoder in :mod:`.jaeger_compact`, which reads
its field ids and types from the structs loaded here.
"""

import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import thriftpy2
import thriftpy2.protocol
import thriftpy2.utils

from gatetrace.runtime import span as _span
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.reporting import text as _text

__all__ = [
    "DEFAULT_MAX_STRING_BYTES",
    "JAEGER_NAMES",
    "KIND_TAG",
    "MAX_I64",
    "MIN_I64",
    "THRIFT",
    "ValueSanitizer",
    "batch_of",
    "client_stats",
    "extra_tags",
    "flags_of",
    "jaeger_key",
    "kind_value",
    "serialize_binary",
    "signed64",
    "span_tag_items",
    "to_batch",
    "to_process",
    "to_span",
]

THRIFT: Any = thriftpy2.load(
    str(pathlib.Path(__file__).with_name("jaeger.thrift")), module_name="gatetrace_jaeger_thrift"
)
"""The module thriftpy2 generated from ``jaeger.thrift`` (``Span``, ``Batch``, ``Agent``...)."""

MIN_I64 = -(1 << 63)
MAX_I64 = (1 << 63) - 1
_U64 = 1 << 64
_LOW64 = _U64 - 1

DEFAULT_MAX_STRING_BYTES = 64 * 1024
"""Encoded strings (tag values, log fields, names) longer than this are cut."""

KIND_TAG = "span.kind"
_KIND_VALUES: dict[_span.SpanKind, str | None] = {
    _span.SpanKind.SERVER: "server",
    _span.SpanKind.CLIENT: "client",
    _span.SpanKind.PRODUCER: "producer",
    _span.SpanKind.CONSUMER: "consumer",
    _span.SpanKind.INTERNAL: None,
}


def signed64(value: int) -> int:
    """An unsigned 64-bit id as the signed i64 thrift carries (two's complement)."""
    value &= _LOW64
    return value - _U64 if value > MAX_I64 else value


def flags_of(span: _span.Span) -> int:
    """Jaeger flags: 1 sampled, 2 debug."""
    return (1 if span.sampled else 0) | (2 if span.context.debug else 0)


def kind_value(kind: _span.SpanKind) -> str | None:
    """The ``span.kind`` tag value Jaeger clients use; None for internal spans."""
    return _KIND_VALUES[kind]


JAEGER_NAMES: Final[Mapping[str, str]] = {
    _tracer.SAMPLER_TYPE: "sampler.type",
    _tracer.SAMPLER_PARAM: "sampler.param",
}
"""Our namespaced keys that Jaeger knows under its clients' names (its UI and adaptive
sampling read ``sampler.type``/``sampler.param`` from root spans)."""
_OK: Final = _span.StatusCode.OK
_ERROR: Final = _span.StatusCode.ERROR


def jaeger_key(key: str) -> str:
    """``key`` as Jaeger output names it (:data:`JAEGER_NAMES`)."""
    return JAEGER_NAMES.get(key, key)


def extra_tags(span: _span.Span) -> list[tuple[str, _span.TagValue]]:
    """What a Jaeger span carries beyond its attributes, as the OpenTelemetry Collector's
    translator writes it: ``span.kind``; for an error status ``error=true``,
    ``otel.status_code=ERROR`` and ``otel.status_description``; ``otel.status_code=OK``."""
    extra: list[tuple[str, _span.TagValue]] = []
    tags = span.tags
    kind = _KIND_VALUES[span.kind]
    if kind is not None and KIND_TAG not in tags:
        extra.append((KIND_TAG, kind))
    status = span.status
    code = status.code
    if code is _ERROR:
        if "error" not in tags:
            extra.append(("error", True))
        extra.append(("otel.status_code", "ERROR"))
        if status.description:
            extra.append(("otel.status_description", status.description))
    elif code is _OK:
        extra.append(("otel.status_code", "OK"))
    return extra


def span_tag_items(span: _span.Span) -> list[tuple[Any, Any]]:
    """The span's tags (Jaeger names) plus :func:`extra_tags`."""
    items: list[tuple[Any, Any]] = [
        (JAEGER_NAMES.get(k, k) if type(k) is str else k, v) for k, v in span.tags.items()
    ]
    items.extend(extra_tags(span))
    return items


def client_stats(
    full_queue_dropped: Callable[[], float] | None, too_large: int = 0, failed: int = 0
) -> tuple[int, int, int]:
    """ClientStats: spans dropped on a full queue (read from the engine, best effort),
    too large for a datagram, and lost to failed sends."""
    full = 0
    if full_queue_dropped is not None:
        try:
            full = int(full_queue_dropped())
        except Exception:  # stats are best effort; sending is not
            full = 0
    return (full, too_large, failed)


class ValueSanitizer:
    """Turns any key/value into something thrift can carry, counting every change.

    Counted by ``what`` (the names the other reporters use too):
    ``value_length`` (string cut to ``max_string_bytes``), ``invalid_utf8``
    (lone surrogates replaced), ``value_type`` (a value of another type sent as
    its string form), ``value_range`` (an integer outside i64 sent as a string).
    """

    __slots__ = ("max_string_bytes", "truncated")

    def __init__(self, max_string_bytes: int = DEFAULT_MAX_STRING_BYTES) -> None:
        if max_string_bytes < 16:
            raise ValueError(f"max_string_bytes: must be at least 16, got {max_string_bytes}")
        self.max_string_bytes = max_string_bytes
        self.truncated: dict[str, int] = {}
        """Changes since the last :meth:`take`, by what."""

    def count(self, what: str, amount: int = 1) -> None:
        self.truncated[what] = self.truncated.get(what, 0) + amount

    def take(self) -> dict[str, int]:
        """The counts since the last call (for one export's outcome), then reset."""
        taken, self.truncated = self.truncated, {}
        return taken

    def utf8(self, text: str) -> bytes:
        """``text`` as UTF-8, surrogates replaced, cut at a character boundary to fit."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = text.encode("utf-8", "replace")
            self.count("invalid_utf8")
        if len(data) > self.max_string_bytes:
            data = data[: self.max_string_bytes].decode("utf-8", "ignore").encode("utf-8")
            self.count("value_length")
        return data

    def text(self, value: object) -> str:
        """The string form of any object (``str()``, else ``repr()``, else the type name)."""
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", "replace")
        try:
            return str(value)
        except Exception:
            try:
                return repr(value)
            except Exception:
                return f"<{type(value).__qualname__}>"

    def key(self, key: object) -> str:
        if type(key) is str:
            return key
        self.count("value_type")
        return self.text(key)

    def value(self, value: object) -> bool | int | float | str:
        """A value of exactly ``bool``, ``int`` (within i64), ``float`` or ``str``."""
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            number = int(value)
            if MIN_I64 <= number <= MAX_I64:
                return number
            self.count("value_range")
            return _text.int_text(number)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str.__str__(value)
        self.count("value_type")
        return self.text(value)

    def clean_str(self, text: str) -> str:
        """``text`` as a str that encodes to valid UTF-8 within the byte limit."""
        if text.isascii() and len(text) <= self.max_string_bytes:
            return text
        return self.utf8(text).decode("utf-8")


# -- thriftpy2 objects (collector path) ----------------------------------------


def _tag(key: object, value: object, clean: ValueSanitizer) -> Any:
    tag_type = THRIFT.TagType
    name = clean.clean_str(clean.key(key))
    v = clean.value(value)
    if type(v) is str:
        return THRIFT.Tag(key=name, vType=tag_type.STRING, vStr=clean.clean_str(v))
    if type(v) is bool:
        return THRIFT.Tag(key=name, vType=tag_type.BOOL, vBool=v)
    if type(v) is int:
        return THRIFT.Tag(key=name, vType=tag_type.LONG, vLong=v)
    return THRIFT.Tag(key=name, vType=tag_type.DOUBLE, vDouble=v)


def _tags(items: Iterable[tuple[object, object]], clean: ValueSanitizer) -> list[Any]:
    return [_tag(key, value, clean) for key, value in items]


def to_process(resource: _span.Resource, clean: ValueSanitizer) -> Any:
    return THRIFT.Process(
        serviceName=clean.clean_str(clean.text(resource.service_name)),
        tags=_tags(resource.tags, clean),
    )


def to_span(span: _span.Span, clean: ValueSanitizer) -> Any:
    trace_id = span.context.trace_id
    start_us = span.start_ns // 1000
    end_ns = span.end_ns
    duration_us = max((end_ns - span.start_ns) // 1000, 0) if end_ns is not None else 0
    refs = [
        THRIFT.SpanRef(
            refType=(
                THRIFT.SpanRefType.FOLLOWS_FROM
                if ref.type is _span.ReferenceType.FOLLOWS_FROM
                else THRIFT.SpanRefType.CHILD_OF
            ),
            traceIdLow=signed64(ref.context.trace_id),
            traceIdHigh=signed64(ref.context.trace_id >> 64),
            spanId=signed64(ref.context.span_id),
        )
        for ref in span.references
    ]
    logs = [
        THRIFT.Log(timestamp=log.timestamp_ns // 1000, fields=_tags(log.fields.items(), clean))
        for log in span.logs
    ]
    return THRIFT.Span(
        traceIdLow=signed64(trace_id),
        traceIdHigh=signed64(trace_id >> 64),
        spanId=signed64(span.context.span_id),
        parentSpanId=signed64(span.parent_id or 0),
        operationName=clean.clean_str(clean.text(span.name)),
        references=refs or None,
        flags=flags_of(span),
        startTime=start_us,
        duration=duration_us,
        tags=_tags(span_tag_items(span), clean),
        logs=logs or None,
    )


def to_batch(
    process: Any,
    spans: Sequence[_span.Span],
    clean: ValueSanitizer,
    *,
    seq_no: int | None = None,
    stats: tuple[int, int, int] | None = None,
) -> Any:
    """A thriftpy2 ``Batch``; ``stats`` is (full queue, too large, failed to emit) dropped spans."""
    return batch_of(process, [to_span(span, clean) for span in spans], seq_no=seq_no, stats=stats)


def batch_of(
    process: Any,
    thrift_spans: list[Any],
    *,
    seq_no: int | None = None,
    stats: tuple[int, int, int] | None = None,
) -> Any:
    """:func:`to_batch` of spans already converted by :func:`to_span`."""
    return THRIFT.Batch(
        process=process,
        spans=thrift_spans,
        seqNo=seq_no,
        stats=None if stats is None else THRIFT.ClientStats(*stats),
    )


_BINARY = thriftpy2.protocol.TCyBinaryProtocolFactory()


def serialize_binary(obj: Any) -> bytes:
    """``obj`` in the thrift binary protocol (thriftpy2's Cython implementation)."""
    data: bytes = thriftpy2.utils.serialize(obj, _BINARY)
    return data
