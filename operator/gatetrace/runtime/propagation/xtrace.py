"""The legacy ``X-Trace-Id`` / ``X-Span-Id`` / ``X-Sampled`` / ``X-Baggage-{key}`` headers.

The seed services' format, with the grammar we hold it to:

- ``X-Trace-Id``: 16 or 32 hex digits (either case), not all zero;
- ``X-Span-Id``: 16 hex digits (either case), not all zero;
- ``X-Sampled``: ``1``, ``0``, ``true`` or ``false`` (any case); absent means
  the decision was deferred; anything else is dropped (and counted) alone;
- ``X-Baggage-{key}: {value}``: ``key`` a header-name token, read in lowercase
  (header names are case-insensitive), ``value`` percent-encoded as in
  :mod:`.percent`; limited like W3C baggage.

Each header must appear once (a repeated one is counted as ``duplicate``).
We write lowercase hex, ``X-Sampled: 1``/``0`` (nothing when deferred; debug
is written as ``1``, the format has no debug).
The seed's UUID-shaped ids are not accepted: they cannot be carried by the
other formats.
"""

from collections.abc import Sequence
from typing import Any

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import prefixed as _prefixed

__all__ = ["XTracePropagator"]

FORMAT = "xtrace"
_TRACE_ID = "x-trace-id"
_SPAN_ID = "x-span-id"
_SAMPLED = "x-sampled"
_PREFIX = "x-baggage-"
_HEX = frozenset("0123456789abcdefABCDEF")
_SAMPLED_VALUES = {"1": True, "0": False, "true": True, "false": False}
_TRACE_LIMIT = 1 << 128
_SPAN_LIMIT = 1 << 64
_OWS = " \t"


def _parse_id(values: Sequence[str], lengths: tuple[int, ...]) -> int | None:
    if not values:
        return None
    text = values[0].strip(_OWS)
    if len(text) not in lengths or not _HEX.issuperset(text):
        return None
    return int(text, 16) or None


class XTracePropagator(_prefixed.PrefixedBaggageFormat):
    """Reads and writes the legacy ``X-*`` headers; see the module docstring."""

    name = FORMAT
    fields = frozenset((_TRACE_ID, _SPAN_ID, _SAMPLED, _PREFIX))
    read_prefix = _PREFIX
    write_prefix = "X-Baggage-"

    __slots__ = ()

    def _extract_context(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        trace_values = getter.get(carrier, _TRACE_ID)
        if not trace_values:
            return found
        span_values = getter.get(carrier, _SPAN_ID)
        if len(trace_values) > 1 or len(span_values) > 1:
            self._failures.failed(FORMAT, "duplicate")
            return found
        trace_id = _parse_id(trace_values, (16, 32))
        if trace_id is None:
            self._failures.failed(FORMAT, "trace_id")
            return found
        span_id = _parse_id(span_values, (16,))
        if span_id is None:
            self._failures.failed(FORMAT, "span_id")
            return found
        sampled: bool | None = None
        sampled_values = getter.get(carrier, _SAMPLED)
        if sampled_values:
            if len(sampled_values) > 1:
                self._failures.failed(FORMAT, "duplicate")
            else:
                sampled = _SAMPLED_VALUES.get(sampled_values[0].strip(_OWS).lower())
                if sampled is None:
                    self._failures.failed(FORMAT, "sampled")
        context = _sc.SpanContext(trace_id, span_id, sampled, False, False, True)
        return _base.adopt(found, context, FORMAT)

    def _inject_context(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        trace_id = context.trace_id
        span_id = context.span_id
        if 0 < trace_id < _TRACE_LIMIT and 0 < span_id < _SPAN_LIMIT:
            setter.set(carrier, "X-Trace-Id", f"{trace_id:032x}")
            setter.set(carrier, "X-Span-Id", f"{span_id:016x}")
            if context.debug or context.sampled is not None:
                setter.set(carrier, "X-Sampled", "1" if context.debug or context.sampled else "0")
        else:
            self._failures.failed(FORMAT, "inject_invalid_context")
