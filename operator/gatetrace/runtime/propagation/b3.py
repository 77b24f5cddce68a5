"""Zipkin B3, single-header form: ``b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]``.

As in openzipkin/b3-propagation: the trace id is 16 or 32 lowercase hex
digits, span and parent ids 16, none all zero; ``sampling`` is ``1``
(accept), ``0`` (deny) or ``d`` (debug, which implies accept). The header
may also be the sampling state alone: ``b3: 0`` asks not to sample and
carries no ids, so extraction reports it as :attr:`~.base.Extracted.sampled`
without a context. We write 32-digit trace ids, no parent (a span context
does not hold one), ``d`` for debug, and no sampling field for a deferred
decision. Values longer than 128 characters are rejected unread.
"""

from typing import Any

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base

__all__ = ["B3Propagator", "parse_id"]

FORMAT = "b3"
_HEADER = "b3"
_MAX_CHARS = 128
_LOWER_HEX = frozenset("0123456789abcdef")
_TRACE_LIMIT = 1 << 128
_SPAN_LIMIT = 1 << 64
_SAMPLING: dict[str, tuple[bool, bool]] = {
    "1": (True, False),
    "0": (False, False),
    "d": (True, True),
}
_OWS = " \t"


def parse_id(text: str, lengths: tuple[int, ...]) -> int | None:
    """A non-zero id of one of ``lengths`` lowercase hex digits; None otherwise."""
    if len(text) not in lengths or not _LOWER_HEX.issuperset(text):
        return None
    return int(text, 16) or None


class B3Propagator:
    """Reads and writes the single ``b3`` header; see the module docstring."""

    name = FORMAT
    fields = frozenset((_HEADER,))

    __slots__ = ("_failures",)

    def __init__(self, failures: _base.FailureCounter = _base.IGNORE_FAILURES) -> None:
        self._failures = failures

    def extract(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        previous = found.context
        if previous is not None and previous.trace_id:
            return found  # an earlier format won: not even read
        values = getter.get(carrier, _HEADER)
        if not values:
            return found
        if len(values) != 1:
            self._failures.failed(FORMAT, "duplicate")
            return found
        value = values[0]
        if len(value) > _MAX_CHARS:
            self._failures.failed(FORMAT, "too_long")
            return found
        parts = value.strip(_OWS).split("-")
        count = len(parts)
        if count == 1:
            decision = _SAMPLING.get(parts[0])
            if decision is None:
                self._failures.failed(FORMAT, "sampled")
                return found
            if found.sampled is not None:
                return found
            return found._replace(sampled=decision[0], debug=decision[1])
        if count > 4:
            self._failures.failed(FORMAT, "format")
            return found
        trace_id = parse_id(parts[0], (16, 32))
        if trace_id is None:
            self._failures.failed(FORMAT, "trace_id")
            return found
        span_id = parse_id(parts[1], (16,))
        if span_id is None:
            self._failures.failed(FORMAT, "span_id")
            return found
        sampled: bool | None = None
        debug = False
        if count > 2:
            decision = _SAMPLING.get(parts[2])
            if decision is None:
                self._failures.failed(FORMAT, "sampled")
                return found
            sampled, debug = decision
            if count == 4 and parse_id(parts[3], (16,)) is None:
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
        if context.debug:
            suffix = "-d"
        elif context.sampled is None:
            suffix = ""
        else:
            suffix = "-1" if context.sampled else "-0"
        setter.set(carrier, _HEADER, f"{trace_id:032x}-{span_id:016x}{suffix}")
