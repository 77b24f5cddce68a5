"""Jaeger: ``uber-trace-id``, ``uberctx-{key}`` baggage and ``jaeger-debug-id``.

``uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`` (or its
URL-encoded form, ``%3A`` for the colons): trace id 1-32 hex digits, span id
1-16, neither zero; the deprecated parent id 1-16 hex digits (``0`` allowed);
flags one or two hex digits, bit 0 sampled, bit 1 debug. Jaeger has no
deferred decision, so an undecided context is written with flags 0. We write
32/16-digit ids, parent ``0`` and flags as one hex digit, debug as ``3``.

``uberctx-{key}: {value}`` carries baggage, values URL-encoded (we write the
:mod:`.percent` encoding, which URL-decoding reads back); header names are
case-insensitive, so keys are read in lowercase. ``jaeger-debug-id`` without
a valid ``uber-trace-id`` yields an id-less context with ``debug`` and
``debug_id`` set: the tracer starts a new, forced-sampled trace for it.
"""

import urllib.parse
from collections.abc import Sequence
from typing import Any

from gatetrace.runtime import ids
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import prefixed as _prefixed

__all__ = ["JaegerPropagator"]

FORMAT = "jaeger"
_TRACE_HEADER = "uber-trace-id"
_DEBUG_HEADER = "jaeger-debug-id"
_PREFIX = "uberctx-"
_MAX_CHARS = 256
_HEX = frozenset("0123456789abcdefABCDEF")
_PRINTABLE = frozenset(chr(c) for c in range(0x20, 0x7F))
_TRACE_LIMIT = 1 << 128
_SPAN_LIMIT = 1 << 64
_OWS = " \t"


class JaegerPropagator(_prefixed.PrefixedBaggageFormat):
    """Reads and writes Jaeger's headers; see the module docstring."""

    name = FORMAT
    fields = frozenset((_TRACE_HEADER, _DEBUG_HEADER, _PREFIX))
    read_prefix = write_prefix = _PREFIX

    __slots__ = ()

    def _extract_context(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        values = getter.get(carrier, _TRACE_HEADER)
        if values:
            context = self._parse(values)
            if context is not None:
                return _base.adopt(found, context, FORMAT)
        debug_values = getter.get(carrier, _DEBUG_HEADER)
        if not debug_values or found.context is not None:
            return found
        debug_id = debug_values[0].strip(_OWS)
        if len(debug_values) != 1 or not debug_id or len(debug_id) > _MAX_CHARS:
            self._failures.failed(FORMAT, "debug_id")
            return found
        if not _PRINTABLE.issuperset(debug_id):
            self._failures.failed(FORMAT, "debug_id")
            return found
        context = _sc.SpanContext(0, 0, True, True, False, True, debug_id=debug_id)
        return _base.Extracted(context, found.baggage, FORMAT, True, True)

    def _parse(self, values: Sequence[str]) -> _sc.SpanContext | None:
        if len(values) != 1:
            self._failures.failed(FORMAT, "duplicate")
            return None
        value = values[0]
        if len(value) > _MAX_CHARS:
            self._failures.failed(FORMAT, "too_long")
            return None
        if "%" in value:
            value = urllib.parse.unquote(value)
        parts = value.strip(_OWS).split(":")
        if len(parts) != 4:
            self._failures.failed(FORMAT, "format")
            return None
        trace_text, span_text, parent_text, flags_text = parts
        trace_id = ids.parse_trace_id(trace_text)
        if trace_id is None:
            self._failures.failed(FORMAT, "trace_id")
            return None
        span_id = ids.parse_span_id(span_text)
        if span_id is None:
            self._failures.failed(FORMAT, "span_id")
            return None
        if not (0 < len(parent_text) <= 16 and _HEX.issuperset(parent_text)):
            self._failures.failed(FORMAT, "parent_id")
            return None
        if not (0 < len(flags_text) <= 2 and _HEX.issuperset(flags_text)):
            self._failures.failed(FORMAT, "flags")
            return None
        flags = int(flags_text, 16)
        return _sc.SpanContext(trace_id, span_id, bool(flags & 1), bool(flags & 2), False, True)

    def _inject_context(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        trace_id = context.trace_id
        span_id = context.span_id
        if 0 < trace_id < _TRACE_LIMIT and 0 < span_id < _SPAN_LIMIT:
            flags = 3 if context.debug else (1 if context.sampled else 0)
            setter.set(carrier, _TRACE_HEADER, f"{trace_id:032x}:{span_id:016x}:0:{flags:x}")
        else:
            self._failures.failed(FORMAT, "inject_invalid_context")
