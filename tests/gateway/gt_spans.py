"""Builds finished spans with chosen services, timings and parents for store/query tests."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from gatetrace.runtime import ids, span, spancontext

T = TypeVar("T")


class _NoLimits:
    def limit_hit(self, what: str, amount: int = 1) -> None:
        pass


def make_span(
    *,
    service: str = "gw",
    name: str = "GET /",
    trace_id: int | None = None,
    span_id: int | None = None,
    parent: span.Span | None = None,
    start_ns: int = 1_700_000_000_000_000_000,
    duration_ns: int = 1_000_000,
    kind: span.SpanKind = span.SpanKind.SERVER,
    tags: dict[str, span.TagValue] | None = None,
    error: bool = False,
) -> span.Span:
    if parent is not None:
        trace_id = parent.trace_id
    if trace_id is None:
        trace_id = ids.new_trace_id()
    ctx = spancontext.SpanContext(trace_id, span_id or ids.new_span_id(), True)
    s = span.Span(
        ctx,
        name,
        kind=kind,
        parent_id=parent.span_id if parent is not None else None,
        resource=span.Resource(service, (("hostname", "h1"),)),
        references=(),
        sampled=True,
        recording=True,
        start_ns=start_ns,
        limits=span.SpanLimits(),
        metrics=_NoLimits(),
        end_hook=None,
    )
    if tags:
        s.set_tags(tags)
    if error:
        s.set_status(span.StatusCode.ERROR, "boom")
    s.finish(start_ns + duration_ns)
    return s


async def loop_turns(work: Awaitable[T]) -> tuple[T, int]:
    """Await ``work`` and count how often the event loop ran something else meanwhile (a
    ticker task's turns): how a test sees that a long computation yields, without timing."""
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = turns
    try:
        result = await work
    finally:
        running.cancel()
    return result, turns - before
