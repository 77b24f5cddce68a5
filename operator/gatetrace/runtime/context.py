"""The active span, kept in a :class:`contextvars.ContextVar`.

asyncio copies the current context into every task it creates, so a span
activated around ``await`` or ``asyncio.create_task`` stays the parent of the
work done there, and concurrent requests never see each other's spans.
"""

import contextlib
import contextvars
from collections.abc import Iterator

from gatetrace.runtime import span as _span

__all__ = ["attach", "current_span", "detach", "use_span"]

_ACTIVE: contextvars.ContextVar["_span.Span | None"] = contextvars.ContextVar(
    "gatetrace_active_span", default=None
)


def current_span() -> "_span.Span | None":
    """The span active in this task (or thread), if any."""
    return _ACTIVE.get()


def attach(span: "_span.Span | None") -> "contextvars.Token[_span.Span | None]":
    """Make ``span`` active; give the token back to :func:`detach`."""
    return _ACTIVE.set(span)


def detach(token: "contextvars.Token[_span.Span | None]") -> None:
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
