"""The active span, kept in a :class:`contextvars.ContextVar`.

asyncio copies the current context into every task it creates, so a span
activated around ``await`` or ``asyncio.create_task`` stays the parent of the
work done there, and concurrent requests never see each other's spans.

What is active may be a :class:`SpanStandIn` rather than a span: instrumentation that
carries only a context for a request nothing records (or records compactly) makes it
current instead, and :func:`current_span` builds the span from it the first time anyone
asks, so code reading the active span sees no difference.
"""

import contextlib
import contextvars
from collections.abc import Iterator

from gatetrace.runtime import span as _span

__all__ = ["SpanStandIn", "active", "attach", "current_span", "detach", "use_span"]


class SpanStandIn:
    """Active in place of a span not built (yet); :meth:`materialize` builds it (once:
    every later call returns the same span)."""

    __slots__ = ()

    def materialize(self) -> "_span.Span":
        raise NotImplementedError


_ACTIVE: contextvars.ContextVar["_span.Span | SpanStandIn | None"] = contextvars.ContextVar(
    "gatetrace_active_span", default=None
)


def current_span() -> "_span.Span | None":
    """The span active in this task (or thread), if any (built now if a stand-in held
    its place)."""
    found = _ACTIVE.get()
    if isinstance(found, SpanStandIn):
        return found.materialize()
    return found


def active() -> "_span.Span | SpanStandIn | None":
    """What is active, as attached (a stand-in is not built)."""
    return _ACTIVE.get()


def attach(
    span: "_span.Span | SpanStandIn | None",
) -> "contextvars.Token[_span.Span | SpanStandIn | None]":
    """Make ``span`` active; give the token back to :func:`detach`."""
    return _ACTIVE.set(span)


def detach(token: "contextvars.Token[_span.Span | SpanStandIn | None]") -> None:
    _ACTIVE.reset(token)


@contextlib.contextmanager
def use_span(span: "_span.Span", *, finish_on_exit: bool = False) -> Iterator["_span.Span"]:
    """Activate ``span`` for the block; record an escaping exception on it."""
    token = _ACTIVE.set(span)
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        raise
    finally:
        _ACTIVE.reset(token)
        if finish_on_exit:
            span.finish()
