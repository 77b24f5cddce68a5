"""SpanContext: the part of a span that crosses process boundaries."""

from typing import NamedTuple

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import ids

__all__ = ["SpanContext", "TraceState"]

TraceState = tuple[tuple[str, str], ...]
"""W3C ``tracestate`` members in order (left-most = most recent), at most 32."""


class SpanContext(NamedTuple):
    """Immutable identity and propagation state of a span.

    A NamedTuple rather than a frozen dataclass: it is built once per span on
    the hot path, and tuple construction is the cheapest immutable object.
    """

    trace_id: int
    span_id: int
    sampled: bool | None = None
    """The upstream decision; ``None`` when the sender deferred it (B3/Jaeger allow that)."""
    debug: bool = False
    """Forced sampling requested by the caller (B3 ``d``, ``jaeger-debug-id``, Jaeger flag 2)."""
    random: bool = False
    """W3C Trace Context level 2 ``random`` flag: the trace id's right 56 bits are random."""
    remote: bool = False
    """True for a context extracted from a carrier."""
    trace_state: TraceState = ()
    baggage: _baggage.Baggage = _baggage.EMPTY_BAGGAGE
    debug_id: str = ""
    """A ``jaeger-debug-id`` correlation id, recorded as a tag on the root span."""

    @property
    def is_valid(self) -> bool:
        return bool(self.trace_id) and bool(self.span_id)

    @property
    def trace_id_hex(self) -> str:
        return ids.format_trace_id(self.trace_id)

    @property
    def span_id_hex(self) -> str:
        return ids.format_span_id(self.span_id)
