"""Samplers inside the real Tracer: root tags, decision metrics, priority upgrades."""

from samplertools import ManualClock

from gatetrace.runtime import span, spancontext, tracer
from gatetrace.runtime.sampling import (
    CappedSampler,
    ConstSampler,
    DebugSampler,
    ParentBasedSampler,
    PriorityBudget,
    PrioritySampler,
    ProbabilisticSampler,
    RequestInfo,
    RuleBasedSampler,
    RuleMatch,
    SamplingRule,
)


class _Collect:
    def __init__(self) -> None:
        self.spans: list[span.Span] = []

    def on_end(self, finished: span.Span) -> None:
        self.spans.append(finished)


def _gateway_chain(clock: ManualClock, budget: PriorityBudget) -> DebugSampler:
    rules = RuleBasedSampler(
        [
            SamplingRule(
                RuleMatch.create(path_prefix="/pay", methods=["POST"]),
                ConstSampler(True),
                name="pay",
            )
        ],
        default=ProbabilisticSampler(0.0),
    )
    capped = CappedSampler(ParentBasedSampler(rules), 2, clock=clock)
    return DebugSampler(PrioritySampler(capped, budget))


def test_root_span_records_sampler_type_param_and_metrics_count_reasons() -> None:
    clock, out = ManualClock(), _Collect()
    budget = PriorityBudget(1, clock=clock)
    t = tracer.Tracer(span.Resource("gw"), sampler=_gateway_chain(clock, budget), processor=out)
    pay = RequestInfo("POST", "/pay/1", {})
    for _ in range(3):
        t.start_span("POST /pay", parent=None, request=pay).finish()
    assert [s.tags["gatetrace.sampler.type"] for s in out.spans] == ["const", "const"]
    assert [s.tags["gatetrace.sampler.param"] for s in out.spans] == [True, True]
    decisions = t.metrics.decisions
    assert decisions.value(("const", "rule:pay", "sample")) == 2
    assert decisions.value(("const", "cap", "record_only")) == 1


def test_debug_parent_is_sampled_and_counted() -> None:
    clock, out = ManualClock(), _Collect()
    budget = PriorityBudget(1, clock=clock)
    t = tracer.Tracer(span.Resource("gw"), sampler=_gateway_chain(clock, budget), processor=out)
    remote = spancontext.SpanContext(5, 6, False, True, False, True)
    t.start_span("GET /", parent=remote).finish()
    assert [s.tags["gatetrace.sampler.type"] for s in out.spans] == ["debug"]
    assert t.metrics.decisions.value(("debug", "debug", "sample")) == 1


def test_dropped_trace_is_kept_on_upgrade_within_the_budget_only() -> None:
    clock, out = ManualClock(), _Collect()
    budget = PriorityBudget(1, clock=clock)
    t = tracer.Tracer(span.Resource("gw"), sampler=_gateway_chain(clock, budget), processor=out)
    first = t.start_span("GET /slow", parent=None)
    child = t.start_span("upstream", parent=first)
    child.finish()
    assert first.pending
    assert first.upgrade("slow")
    first.finish()
    assert [s.name for s in out.spans] == ["upstream", "GET /slow"]
    assert first.tags["sampling.priority.reason"] == "slow"

    second = t.start_span("GET /err", parent=None)
    assert not second.upgrade("error")  # the one-per-second budget is spent
    second.finish()
    third = t.start_span("GET /ok", parent=None)
    third.finish()  # never upgraded: discarded
    assert len(out.spans) == 2
    assert (budget.granted, budget.denied) == (1, 1)

    clock.advance(1.0)
    fourth = t.start_span("GET /err", parent=None)
    assert fourth.upgrade("error")
    fourth.finish()
    assert out.spans[-1] is fourth
