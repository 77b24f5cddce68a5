"""The pending mark: a trace whose edge sampling decision is still open.

A gateway with error/latency priority records a request it has not sampled (yet) and
decides at its end. While it waits, it sends the trace on with ``sampled=0`` (so other
SDKs behave as before) and our own W3C ``tracestate`` member :data:`KEY` ``=``
:data:`VALUE` (``gt=p``): a service running the kit then buffers the trace's spans
instead of dropping them. Only ``tracecontext`` carries ``tracestate``; B3, Jaeger and
X-Trace have no place for it, so a hop reached only through those formats drops the
trace as before.

The mark is the gateway's to set: it removes any mark a client sent (a client must not
make services buffer its traces) and sets it only on the traces it holds pending.
"""

from typing import Final

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import tracestate as _tracestate

__all__ = ["KEY", "MEMBER", "VALUE", "is_pending", "marked", "unmarked"]

KEY: Final = "gt"
"""Our ``tracestate`` key: Level 2 grammar, a simple key (no ``@`` tenant)."""
VALUE: Final = "p"
"""``p``: the edge's decision is pending."""
MEMBER: Final = (KEY, VALUE)
_TRACE_STATE_AT: Final = _sc.SpanContext._fields.index("trace_state")
_new_tuple = tuple.__new__


def is_pending(context: _sc.SpanContext) -> bool:
    """Whether ``context`` is an unsampled trace carrying the pending mark."""
    return context.sampled is False and MEMBER in context.trace_state


def _with_state(context: _sc.SpanContext, members: _sc.TraceState) -> _sc.SpanContext:
    return _new_tuple(
        _sc.SpanContext, (*context[:_TRACE_STATE_AT], members, *context[_TRACE_STATE_AT + 1 :])
    )


def marked(context: _sc.SpanContext) -> _sc.SpanContext:
    """``context`` not sampled, with ``gt=p`` first in its tracestate."""
    members = context.trace_state
    if members and members[0] == MEMBER and context.sampled is False:
        return context
    members = _tracestate.set_member(members, KEY, VALUE)
    state = _with_state(context, members)
    return state if state.sampled is False else state._replace(sampled=False)


def unmarked(context: _sc.SpanContext) -> _sc.SpanContext:
    """``context`` without any ``gt`` member (the others in their order)."""
    members = context.trace_state
    if not members:
        return context
    for key, _value in members:
        if key == KEY:
            return _with_state(context, _tracestate.delete_member(members, KEY))
    return context
