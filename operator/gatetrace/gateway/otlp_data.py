"""An OTLP ``ExportTraceServiceRequest`` as decoded, before it becomes stored spans.

Both wire forms (:mod:`.otlp_protobuf`, :mod:`.otlp_json`) decode into these plain
records; :mod:`.otlp_spans` checks them and builds runtime spans. Ids stay bytes here
(their length is checked later, per span), timestamps are ns, enums are their numbers.

Attribute values the runtime's tags cannot hold (arrays, key/value lists, bytes) are
flattened here into strings, as the OpenTelemetry exporters to Jaeger and Zipkin do:
arrays and key/value lists as JSON, bytes as base64.
"""

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from gatetrace.runtime import span as _span

__all__ = [
    "DECODE_STEP",
    "Attributes",
    "OtlpEvent",
    "OtlpLink",
    "OtlpResourceSpans",
    "OtlpSpan",
    "Steps",
    "TooManySpansError",
    "flatten",
]

Attributes = list[tuple[str, _span.TagValue]]
"""Key/value pairs in wire order (a repeated key: the last one counts, as in a dict)."""


class TooManySpansError(ValueError):
    """The request holds more spans than one request may (the decoders stop counting)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} spans in one request")


DECODE_STEP = 32
"""Spans decoded (or built) before a stepwise decoder yields to the event loop: about a
millisecond or two of work, so a large request never holds the proxy up for long."""


class Steps:
    """Counts a request's spans as they are decoded: raises :class:`TooManySpansError`
    past ``limit``; :meth:`add` says when a step is done (the decoder yields then)."""

    __slots__ = ("count", "limit", "step")

    def __init__(self, limit: int, step: int = DECODE_STEP) -> None:
        self.count = 0
        self.limit = limit
        self.step = step

    def add(self) -> bool:
        self.count += 1
        if self.count > self.limit:
            raise TooManySpansError(self.limit)
        return self.count % self.step == 0


@dataclass(slots=True)
class OtlpEvent:
    """``Span.Event``."""

    time_ns: int = 0
    name: str = ""
    attributes: Attributes = field(default_factory=list)


@dataclass(slots=True)
class OtlpLink:
    """``Span.Link``."""

    trace_id: bytes = b""
    span_id: bytes = b""
    trace_state: str = ""
    attributes: Attributes = field(default_factory=list)
    flags: int = 0


@dataclass(slots=True)
class OtlpSpan:
    """``Span``; ``where`` is its place in the request (resource, scope, span index),
    for error messages."""

    where: tuple[int, int, int] = (0, 0, 0)
    trace_id: bytes = b""
    span_id: bytes = b""
    trace_state: str = ""
    parent_span_id: bytes = b""
    flags: int = 0
    name: str = ""
    kind: int = 0
    start_ns: int = 0
    end_ns: int = 0
    attributes: Attributes = field(default_factory=list)
    events: list[OtlpEvent] = field(default_factory=list)
    links: list[OtlpLink] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""


@dataclass(slots=True)
class OtlpResourceSpans:
    """``ResourceSpans`` with the spans of all its scopes (scopes are not kept)."""

    attributes: Attributes = field(default_factory=list)
    spans: list[OtlpSpan] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """A nested array/kvlist value as JSON-ready data (bytes as base64 text)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def flatten(value: Any) -> _span.TagValue:
    """An ``AnyValue`` (str, bool, int, float, bytes, list, dict or ``None`` when unset)
    as a tag value: scalars as they are, the rest as text (see the module docstring)."""
    if isinstance(value, str | bool | int | float):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
