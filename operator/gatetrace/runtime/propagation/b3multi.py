"""Zipkin B3, multiple headers: ``X-B3-TraceId``, ``X-B3-SpanId``, ``X-B3-ParentSpanId``,
``X-B3-Sampled``, ``X-B3-Flags``.

Ids as in :mod:`.b3` (lowercase hex, 16/32 digits for trace ids, 16 for span
and parent ids, never zero). ``X-B3-Sampled`` is ``1`` or ``0`` (the legacy
``true``/``false`` is read, never written); ``X-B3-Flags: 1`` means debug and
implies accept, so it is written instead of ``X-B3-Sampled``. A sampling
header without ids is a bare decision (:attr:`~.base.Extracted.sampled`).
A repeated header is invalid. A bad sampling header is dropped on its own;
a bad id invalidates the context.
"""

from collections.abc import Sequence
from typing import Any

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import b3 as _b3
from gatetrace.runtime.propagation import base as _base

__all__ = ["B3MultiPropagator"]

FORMAT = "b3multi"
_TRACE_ID = "x-b3-traceid"
_SPAN_ID = "x-b3-spanid"
_PARENT_ID = "x-b3-parentspanid"
_SAMPLED = "x-b3-sampled"
_FLAGS = "x-b3-flags"
_TRACE_LIMIT = 1 << 128
_SPAN_LIMIT = 1 << 64
_SAMPLED_VALUES = {"1": True, "0": False, "true": True, "false": False}
_OWS = " \t"


class B3MultiPropagator:
    """Reads and writes the ``X-B3-*`` headers; see the module docstring."""

    name = FORMAT
    fields = frozenset((_TRACE_ID, _SPAN_ID, _PARENT_ID, _SAMPLED, _FLAGS))

    __slots__ = ("_failures",)

    def __init__(self, failures: _base.FailureCounter = _base.IGNORE_FAILURES) -> None:
        self._failures = failures

    def _single(self, values: Sequence[str], reason: str) -> str | None:
        if len(values) != 1:
            self._failures.failed(FORMAT, "duplicate")
            return None
        value = values[0].strip(_OWS)
        if len(value) > 32:
            self._failures.failed(FORMAT, reason)
            return None
        return value

    def _decision(self, carrier: Any, getter: _base.Getter) -> tuple[bool | None, bool]:
        flags_values = getter.get(carrier, _FLAGS)
        if flags_values:
            flags = self._single(flags_values, "flags")
            if flags == "1":
                return True, True
            if flags is not None and flags != "0":
                self._failures.failed(FORMAT, "flags")
        sampled_values = getter.get(carrier, _SAMPLED)
        if sampled_values:
            text = self._single(sampled_values, "sampled")
            if text is not None:
                sampled = _SAMPLED_VALUES.get(text.lower())
                if sampled is not None:
                    return sampled, False
                self._failures.failed(FORMAT, "sampled")
        return None, False

    def extract(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        previous = found.context
        if previous is not None and previous.trace_id:
            return found  # an earlier format won: not even read
        trace_values = getter.get(carrier, _TRACE_ID)
        sampled, debug = self._decision(carrier, getter)
        if not trace_values:
            if sampled is None or found.sampled is not None:
                return found
            return found._replace(sampled=sampled, debug=debug)
        text = self._single(trace_values, "trace_id")
        trace_id = None if text is None else _b3.parse_id(text, (16, 32))
        if trace_id is None:
            if text is not None:
                self._failures.failed(FORMAT, "trace_id")
            return found
        span_values = getter.get(carrier, _SPAN_ID)
        text = self._single(span_values, "span_id") if span_values else ""
        span_id = None if text is None else _b3.parse_id(text, (16,))
        if span_id is None:
            if text is not None:
                self._failures.failed(FORMAT, "span_id")
            return found
        parent_values = getter.get(carrier, _PARENT_ID)
        if parent_values:
            text = self._single(parent_values, "parent_id")
            if text is None:
                return found
            if _b3.parse_id(text, (16,)) is None:
                self._failures.failed(FORMAT, "parent_id")
                return found
        context = _sc.SpanContext(trace_id, span_id, sampled, debug, False, True)
        return _base.adopt(found, context, FORMAT)

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        trace_id = context.trace_id
        span_id = context.span_id
        if not (0 < trace_id < _TRACE_LIMIT and 0 < span_id < _SPAN_LIMIT):
            self._failures.failed(FORMAT, "inject_invalid_context")
            return
        setter.set(carrier, _TRACE_ID, f"{trace_id:032x}")
        setter.set(carrier, _SPAN_ID, f"{span_id:016x}")
        if context.debug:
            setter.set(carrier, _FLAGS, "1")
        elif context.sampled is not None:
            setter.set(carrier, _SAMPLED, "1" if context.sampled else "0")
