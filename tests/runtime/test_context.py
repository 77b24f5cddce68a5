"""The active span follows asyncio tasks and never leaks between concurrent ones."""

import asyncio
import threading

import pytest

from gatetrace.runtime import context, span, tracer

TRACER = tracer.Tracer(span.Resource("svc"))


def test_nothing_is_active_by_default_and_attach_detach_restore() -> None:
    assert context.current_span() is None
    first = TRACER.start_span("first", parent=None)
    token = context.attach(first)
    assert context.current_span() is first
    inner = context.attach(None)
    assert context.current_span() is None
    context.detach(inner)
    assert context.current_span() is first
    context.detach(token)
    assert context.current_span() is None


def test_use_span_nests_and_finishes_on_request() -> None:
    outer = TRACER.start_span("outer", parent=None)
    inner = TRACER.start_span("inner", parent=outer)
    with context.use_span(outer):
        with context.use_span(inner, finish_on_exit=True):
            assert context.current_span() is inner
        assert context.current_span() is outer
        assert inner.is_finished
    assert not outer.is_finished
    assert context.current_span() is None


def test_use_span_records_and_reraises_and_still_restores() -> None:
    s = TRACER.start_span("op", parent=None)
    with pytest.raises(ValueError, match="boom"), context.use_span(s, finish_on_exit=True):
        raise ValueError("boom")
    assert s.is_error
    assert s.is_finished
    assert context.current_span() is None


async def test_a_task_inherits_the_span_active_when_it_was_created() -> None:
    root = TRACER.start_span("request", parent=None)

    async def work() -> span.Span:
        await asyncio.sleep(0)
        child = TRACER.start_span("work")  # parent from the context
        assert child.parent_id == root.span_id
        return child

    with context.use_span(root):
        task = asyncio.create_task(work())
    # the span is no longer active here, but the task copied the context at creation
    assert context.current_span() is None
    child = await task
    assert child.trace_id == root.trace_id


async def test_concurrent_tasks_never_see_each_others_spans() -> None:
    seen: dict[str, list[str]] = {}

    async def request(name: str) -> None:
        with TRACER.start_as_current(name, parent=None) as mine:
            seen[name] = []
            for _ in range(5):
                await asyncio.sleep(0)  # interleave with the other requests
                active = context.current_span()
                assert active is not None
                seen[name].append(active.name)
                with TRACER.start_as_current(f"{name}-step") as step:
                    await asyncio.sleep(0)
                    assert context.current_span() is step
                    assert step.parent_id == mine.span_id
                assert context.current_span() is mine

    await asyncio.gather(*(request(f"r{i}") for i in range(10)))
    assert seen == {f"r{i}": [f"r{i}"] * 5 for i in range(10)}
    assert context.current_span() is None


async def test_a_span_set_inside_a_task_does_not_leak_to_the_creator() -> None:
    outer = TRACER.start_span("outer", parent=None)

    async def sets_its_own() -> None:
        context.attach(TRACER.start_span("inside", parent=None))  # never detached on purpose

    with context.use_span(outer):
        await asyncio.create_task(sets_its_own())
        assert context.current_span() is outer
        await asyncio.gather(sets_its_own(), sets_its_own())
        assert context.current_span() is outer


def test_a_new_thread_starts_without_an_active_span() -> None:
    seen: list[span.Span | None] = []
    with context.use_span(TRACER.start_span("main", parent=None)):
        worker = threading.Thread(target=lambda: seen.append(context.current_span()))
        worker.start()
        worker.join(timeout=10)
    assert seen == [None]


class _StandIn(context.SpanStandIn):
    __slots__ = ("built", "span")

    def __init__(self) -> None:
        self.built = 0
        self.span: span.Span | None = None

    def materialize(self) -> span.Span:
        if self.span is None:
            self.built += 1
            self.span = TRACER.start_span("built", parent=None)
        return self.span


def test_a_stand_in_is_built_only_when_the_current_span_is_asked_for() -> None:
    stand_in = _StandIn()
    token = context.attach(stand_in)
    try:
        assert context.active() is stand_in and stand_in.built == 0
        first = context.current_span()
        assert first is not None and first is stand_in.span
        assert context.current_span() is first and stand_in.built == 1
        child = TRACER.start_span("child")  # parent: the current span, built
        assert child.parent_id == first.context.span_id
    finally:
        context.detach(token)
    assert context.active() is None
