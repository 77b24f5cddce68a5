"""Tracer: root decisions and their record, parents, processors that fail, metrics."""

import types

import pytest

from gatetrace.runtime import baggage, context, metrics, span, spancontext, tracer
from gatetrace.runtime.sampling import base, const, probabilistic


class _Collect:
    def __init__(self) -> None:
        self.spans: list[span.Span] = []

    def on_end(self, finished: span.Span) -> None:
        self.spans.append(finished)


class _Failing:
    def __init__(self) -> None:
        self.calls = 0

    def on_end(self, finished: span.Span) -> None:
        self.calls += 1
        raise RuntimeError("exporter bug")


class _Recording:
    """A real sampler that keeps what it was asked."""

    def __init__(self, decision: base.Decision = base.Decision.SAMPLE) -> None:
        self.asked: list[base.SamplingParams] = []
        self.decision = decision

    def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
        self.asked.append(params)
        return base.SamplingResult(self.decision, "recording", 0.5, "test")

    def describe(self) -> str:
        return "recording"


class _Broken:
    def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
        raise ZeroDivisionError

    def describe(self) -> str:
        return "broken"


RESOURCE = span.Resource("gw", (("hostname", "h1"),))


def test_default_sampler_samples_and_the_root_records_it() -> None:
    out = _Collect()
    t = tracer.Tracer(RESOURCE, processor=out)
    root = t.start_span(
        "GET /", parent=None, kind=span.SpanKind.SERVER, tags={"http.method": "GET"}
    )
    root.finish()
    assert out.spans == [root]
    assert root.resource is RESOURCE
    assert root.parent_id is None
    assert root.is_local_root
    assert root.context.random  # our own trace ids are fully random
    assert root.tags == {
        "gatetrace.sampler.type": "const",
        "gatetrace.sampler.param": True,
        "http.method": "GET",
    }
    assert t.metrics.decisions.value(("const", "always", "sample")) == 1


def test_children_share_the_trace_and_the_decision_without_asking_again() -> None:
    sampler = _Recording()
    t = tracer.Tracer(RESOURCE, sampler=sampler, processor=_Collect())
    root = t.start_span("root", parent=None)
    child = t.start_span("child", parent=root)
    assert len(sampler.asked) == 1
    assert (child.trace_id, child.parent_id) == (root.trace_id, root.span_id)
    assert child.span_id != root.span_id
    assert (child.sampled, child.recording) == (True, True)
    assert not child.is_local_root
    assert "gatetrace.sampler.type" not in child.tags


def test_remote_parent_continues_its_trace_with_its_state() -> None:
    sampler = _Recording()
    t = tracer.Tracer(RESOURCE, sampler=sampler)
    bag = baggage.Baggage.from_values({"tenant": "acme"})
    remote = spancontext.SpanContext(
        0xABC, 0xDEF, True, False, True, True, (("vendor", "v1"),), bag, debug_id="corr-1"
    )
    request = base.RequestInfo("POST", "/pay", {"x-a": "b"})
    s = t.start_span("POST /pay", parent=remote, kind=span.SpanKind.SERVER, request=request)
    (asked,) = sampler.asked
    assert asked == base.SamplingParams(0xABC, "POST /pay", span.SpanKind.SERVER, remote, request)
    assert (s.trace_id, s.parent_id) == (0xABC, 0xDEF)
    assert s.context.trace_state == (("vendor", "v1"),)
    assert s.context.baggage == bag
    assert s.context.random
    assert not s.context.remote
    assert s.tags["jaeger-debug-id"] == "corr-1"
    assert s.tags["gatetrace.sampler.param"] == 0.5


def test_an_invalid_remote_parent_starts_a_new_trace() -> None:
    sampler = _Recording()
    t = tracer.Tracer(RESOURCE, sampler=sampler)
    s = t.start_span("op", parent=spancontext.SpanContext(0, 5, True))
    assert s.trace_id != 0
    assert s.parent_id is None
    assert sampler.asked[0].parent is None


def test_a_half_valid_parent_is_neither_continued_nor_a_decision_hint() -> None:
    """A trace id without a span id: a new trace, none of the parent's flags, state,
    baggage or debug id (only a context with no ids at all is a decision hint)."""
    sampler = _Recording()
    t = tracer.Tracer(RESOURCE, sampler=sampler)
    bag = baggage.Baggage.from_values({"tenant": "acme"})
    parent = spancontext.SpanContext(
        0xABC, 0, True, True, False, True, (("vendor", "v1"),), bag, debug_id="corr-1"
    )
    s = t.start_span("op", parent=parent)
    assert sampler.asked[0].parent is None
    assert s.trace_id not in (0, 0xABC) and s.parent_id is None
    ctx = s.context
    assert (ctx.debug, ctx.random, ctx.trace_state, len(ctx.baggage)) == (False, True, (), 0)
    assert "jaeger-debug-id" not in s.tags


def test_the_sampler_decides_and_a_per_call_sampler_overrides_it() -> None:
    t = tracer.Tracer(RESOURCE, sampler=const.ConstSampler(False))
    dropped = t.start_span("a", parent=None, tags={"k": "v"})
    assert (dropped.sampled, dropped.recording, dropped.tags) == (False, False, {})
    assert dropped.context.sampled is False
    kept = t.start_span("a", parent=None, sampler=probabilistic.ProbabilisticSampler(1.0))
    assert kept.sampled
    assert kept.tags["gatetrace.sampler.type"] == "probabilistic"
    assert t.metrics.started.value(("false",)) == 1
    assert t.metrics.started.value(("true",)) == 1


def test_a_sampler_that_raises_drops_the_trace_and_is_counted() -> None:
    t = tracer.Tracer(RESOURCE, sampler=_Broken())
    s = t.start_span("op", parent=None)
    assert not s.sampled
    assert s.context.is_valid  # the trace still propagates
    assert t.metrics.decisions.value(("error", "sampler_error", "drop")) == 1


def test_a_sampler_result_that_is_no_sampling_result_drops_as_a_sampler_error() -> None:
    class Duck:
        def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
            return types.SimpleNamespace(decision=base.Decision.SAMPLE)  # type: ignore[return-value]

        def describe(self) -> str:
            return "duck"

    t = tracer.Tracer(RESOURCE, sampler=Duck())
    s = t.start_span("op")
    assert not s.recording
    assert t.metrics.decisions.value(("error", "sampler_error", "drop")) == 1


def test_processor_exceptions_are_contained_and_counted() -> None:
    failing = _Failing()
    t = tracer.Tracer(RESOURCE, processor=failing)
    for _ in range(3):
        t.start_span("op", parent=None).finish()  # does not raise
    assert failing.calls == 3
    assert t.metrics.processor_errors.value() == 3
    assert t.metrics.sampled.value() == 3


def test_finished_spans_are_counted_by_outcome() -> None:
    t = tracer.Tracer(RESOURCE, sampler=const.ConstSampler(True), processor=_Collect())
    t.start_span("a", parent=None).finish()
    off = tracer.Tracer(RESOURCE, sampler=const.ConstSampler(False), tracer_metrics=t.metrics)
    s = off.start_span("b", parent=None)
    s.finish()
    s.finish()
    assert t.metrics.finished.value(("exported",)) == 1
    assert t.metrics.finished.value(("not_sampled",)) == 1
    assert t.metrics.finished.total() == 2


def test_current_span_is_the_default_parent() -> None:
    t = tracer.Tracer(RESOURCE)
    with t.start_as_current("outer") as outer:
        assert context.current_span() is outer
        inner = t.start_span("inner")
        assert inner.parent_id == outer.span_id
        explicit_root = t.start_span("other", parent=None)
        assert explicit_root.parent_id is None
        assert explicit_root.trace_id != outer.trace_id
    assert context.current_span() is None
    assert outer.is_finished
    assert t.start_span("fresh").parent_id is None


def test_start_as_current_records_an_escaping_exception() -> None:
    out = _Collect()
    t = tracer.Tracer(RESOURCE, processor=out)
    with pytest.raises(KeyError), t.start_as_current("op"):
        raise KeyError("missing")
    (finished,) = out.spans
    assert finished.is_error
    assert finished.tags["error.type"] == "KeyError"


def test_explicit_start_time_is_used() -> None:
    t = tracer.Tracer(RESOURCE)
    s = t.start_span("op", parent=None, start_ns=1_000_000)
    assert s.start_ns == 1_000_000
    s.finish()
    assert s.end_ns is not None
    assert s.end_ns >= 1_000_000


def test_metrics_share_a_registry() -> None:
    shared = tracer.TracerMetrics()
    a = tracer.Tracer(RESOURCE, tracer_metrics=shared)
    b = tracer.Tracer(RESOURCE, tracer_metrics=tracer.TracerMetrics(shared.registry))
    a.start_span("x", parent=None).finish()
    b.start_span("y", parent=None).finish()
    assert shared.sampled.value() == 2


def test_decision_only_contexts_steer_a_new_trace() -> None:
    """`b3: 0` and a bare jaeger-debug-id carry no ids, but their flags count."""
    from gatetrace.runtime import SpanContext, Tracer
    from gatetrace.runtime.baggage import Baggage
    from gatetrace.runtime.sampling import (
        ConstSampler,
        DebugSampler,
        ParentBasedSampler,
    )

    tracer = Tracer(RESOURCE, sampler=DebugSampler(ParentBasedSampler(ConstSampler(True))))
    deny = tracer.start_span("s", parent=SpanContext(0, 0, sampled=False, remote=True))
    assert not deny.sampled
    assert deny.context.trace_id and deny.parent_id is None
    debug = tracer.start_span(
        "s", parent=SpanContext(0, 0, debug=True, remote=True, debug_id="abc")
    )
    assert debug.sampled and debug.context.debug
    assert debug.tags["jaeger-debug-id"] == "abc"
    bag = tracer.start_span(
        "s", parent=SpanContext(0, 0, remote=True, baggage=Baggage.from_values({"k": "v"}))
    )
    assert bag.sampled and dict(bag.context.baggage) == {"k": "v"}


@pytest.mark.parametrize("decision", list(base.Decision))
def test_start_root_context_builds_a_span_only_for_what_records(decision: base.Decision) -> None:
    collected = _Collect()
    sampler = _Recording(decision)
    t = tracer.Tracer(RESOURCE, sampler=sampler, processor=collected)
    remote = spancontext.SpanContext(
        0xABC, 0xDEF, None, False, True, True, (("v", "1"),), baggage.Baggage({"k": ("v", "")})
    )
    root = t.start_root_context("GET /x", kind=span.SpanKind.SERVER, parent=remote)
    assert sampler.asked[0].parent == remote
    started = t.metrics.started
    if decision is base.Decision.DROP:
        # nothing would ever record it: the context alone, counted started and finished
        assert type(root) is spancontext.SpanContext
        assert (root.trace_id, root.sampled, root.random) == (0xABC, False, True)
        assert root.span_id not in (0, 0xDEF)
        assert (root.trace_state, root.baggage) == (remote.trace_state, remote.baggage)
        assert started.value(("false",)) == 1
        assert t.metrics.finished.value(("not_sampled",)) == 1
        assert collected.spans == []
        return
    assert isinstance(root, span.Span)
    assert root.recording and root.parent_id == 0xDEF and root.kind is span.SpanKind.SERVER
    assert root.sampled is (decision is base.Decision.SAMPLE)
    assert root.tags["gatetrace.sampler.type"] == "recording"
    assert started.value(("true",)) == 1
    root.finish()
    assert collected.spans == ([root] if decision is base.Decision.SAMPLE else [])


def test_start_root_context_decides_a_new_trace_with_a_per_call_sampler() -> None:
    t = tracer.Tracer(RESOURCE, sampler=const.ConstSampler(True))
    root = t.start_root_context(
        "op", kind=span.SpanKind.SERVER, parent=None, sampler=const.ConstSampler(False)
    )
    assert type(root) is spancontext.SpanContext and root.trace_id and root.span_id
    assert root.sampled is False and root.remote is False
    assert t.metrics.decisions.value(("const", "const", "drop")) == 1


def test_dropped_root_contexts_of_every_tracer_on_a_registry_share_one_tally() -> None:
    registry = metrics.Registry()
    for _ in range(3):  # a tracer per applied config, all on the gateway's registry
        t = tracer.Tracer(
            RESOURCE,
            sampler=const.ConstSampler(False),
            tracer_metrics=tracer.TracerMetrics(registry),
        )
        t.start_root_context("op", kind=span.SpanKind.SERVER, parent=None)
        t.start_span("plain", parent=None).finish()  # a dropped Span: counted the usual way
    assert t.metrics.started.value(("false",)) == 6
    assert t.metrics.finished.value(("not_sampled",)) == 6
    assert len(t.metrics.started._tallies[("false",)]) == 1
    assert len(t.metrics.finished._tallies[("not_sampled",)]) == 1


def test_start_child_is_start_span_with_a_local_parent() -> None:
    t = tracer.Tracer(span.Resource("svc"))
    root = t.start_span("root", parent=None)
    a = t.start_child(root, "a", span.SpanKind.CLIENT, 123, 0xABC)
    b = t.start_span("b", kind=span.SpanKind.CLIENT, parent=root, start_ns=123, span_id=0xDEF)
    for child, span_id in ((a, 0xABC), (b, 0xDEF)):
        assert child.context == root.context._replace(span_id=span_id, remote=False)
        assert (child.kind, child.parent_id, child.start_ns) == (
            span.SpanKind.CLIENT,
            root.context.span_id,
            123,
        )
        assert (child.sampled, child.recording, child.resource) == (True, True, root.resource)
    assert t.metrics.recording_started.n == 3
