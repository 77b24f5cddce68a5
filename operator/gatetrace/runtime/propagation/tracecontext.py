"""W3C Trace Context: ``traceparent`` and ``tracestate`` (Level 2, with the random flag).

``traceparent`` is ``version-traceid-parentid-flags`` in lowercase hex only:

- version ``00`` must be exactly 55 characters; ``ff`` is invalid; a higher
  version is parsed by its first four fields, which must then be followed by
  ``-`` or the end of the value (what a future version appends is ignored);
- all-zero trace or parent ids are invalid; flags bit 0 is ``sampled`` and
  bit 1 is Level 2's ``random``; other bits are ignored and sent as zero;
- OWS around the value is ignored; two ``traceparent`` headers are invalid.

When ``traceparent`` is absent or invalid, ``tracestate`` is ignored as the
spec requires. Hot path: slicing, one set test and three ``int(..., 16)``;
no regular expressions. Values longer than 512 characters are rejected
before they are looked at.
"""

from typing import Any

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import tracestate as _tracestate

__all__ = ["MAX_TRACEPARENT_CHARS", "TraceContextPropagator"]

MAX_TRACEPARENT_CHARS = 512
FORMAT = "tracecontext"
_TRACEPARENT = "traceparent"
_TRACESTATE = "tracestate"
_CHARS = frozenset("0123456789abcdef-")
_FLAGS = ("00", "01", "02", "03")
_TRACE_LIMIT = 1 << 128
_SPAN_LIMIT = 1 << 64
_OWS = " \t"
_CACHE_SIZE = 256


class TraceContextPropagator:
    """Reads and writes ``traceparent``/``tracestate``; see the module docstring."""

    name = FORMAT
    fields = frozenset((_TRACEPARENT, _TRACESTATE))

    __slots__ = ("_failures", "_formatted", "_max_tracestate_chars")

    def __init__(
        self,
        failures: _base.FailureCounter = _base.IGNORE_FAILURES,
        max_tracestate_chars: int = _tracestate.DEFAULT_MAX_CHARS,
    ) -> None:
        self._failures = failures
        self._max_tracestate_chars = max_tracestate_chars
        self._formatted: dict[_sc.TraceState, tuple[str, bool]] = {}

    def extract(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        values = getter.get(carrier, _TRACEPARENT)
        if not values:
            return found
        previous = found.context
        if previous is not None and previous.trace_id:
            return found
        if len(values) != 1:
            self._failures.failed(FORMAT, "duplicate")
            return found
        context = self._parse(values[0])
        if context is None:
            return found
        states = getter.get(carrier, _TRACESTATE)
        if states:
            members, reason = _tracestate.parse(states)
            if reason:
                self._failures.failed(FORMAT, reason)
            elif members:
                context = context._replace(trace_state=members)
        return _base.adopt(found, context, FORMAT)

    def _parse(self, value: str) -> _sc.SpanContext | None:
        length = len(value)
        if length != 55:
            if length > MAX_TRACEPARENT_CHARS:
                self._failures.failed(FORMAT, "too_long")
                return None
            value = value.strip(_OWS)
            length = len(value)
            if length < 55:
                self._failures.failed(FORMAT, "format")
                return None
        head = value[:55] if length > 55 else value
        if (
            not _CHARS.issuperset(head)
            or head[2] != "-"
            or head[35] != "-"
            or head[52] != "-"
            or head.count("-") != 3
        ):
            self._failures.failed(FORMAT, "format")
            return None
        version = head[:2]
        if version != "00":
            if version == "ff":
                self._failures.failed(FORMAT, "version")
                return None
            if length > 55 and value[55] != "-":
                self._failures.failed(FORMAT, "format")
                return None
        elif length != 55:
            self._failures.failed(FORMAT, "format")
            return None
        trace_id = int(head[3:35], 16)
        if not trace_id:
            self._failures.failed(FORMAT, "trace_id")
            return None
        span_id = int(head[36:52], 16)
        if not span_id:
            self._failures.failed(FORMAT, "span_id")
            return None
        flags = int(head[53:55], 16)
        return _sc.SpanContext(trace_id, span_id, bool(flags & 1), False, bool(flags & 2), True)

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        trace_id = context.trace_id
        span_id = context.span_id
        if not (0 < trace_id < _TRACE_LIMIT and 0 < span_id < _SPAN_LIMIT):
            self._failures.failed(FORMAT, "inject_invalid_context")
            return
        flags = _FLAGS[(1 if context.sampled else 0) | (2 if context.random else 0)]
        setter.set(carrier, _TRACEPARENT, f"00-{trace_id:032x}-{span_id:016x}-{flags}")
        members = context.trace_state
        if members:
            formatted = self._formatted.get(members)
            if formatted is None:
                formatted = _tracestate.format_members(members, self._max_tracestate_chars)
                if len(self._formatted) >= _CACHE_SIZE:
                    self._formatted.clear()
                self._formatted[members] = formatted
            text, dropped = formatted
            if dropped:
                self._failures.failed(FORMAT, "tracestate_truncated")
            if text:
                setter.set(carrier, _TRACESTATE, text)
