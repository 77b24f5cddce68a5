"""The wrappers: global cap, debug forcing, error/latency priority, and fault containment."""

import pytest
from samplertools import ManualClock, make_params

from gatetrace.runtime import metrics
from gatetrace.runtime.sampling import (
    base,
    cap,
    const,
    debug,
    parentbased,
    priority,
    probabilistic,
    tokenbucket,
)


class _Broken:
    """A sampler with a bug."""

    def should_sample(self, params: base.SamplingParams) -> base.SamplingResult:
        raise RuntimeError("boom")

    def describe(self) -> str:
        return "broken"


def test_cap_turns_samples_beyond_the_rate_into_drops() -> None:
    clock = ManualClock()
    sampler = cap.CappedSampler(const.ConstSampler(True), 2, clock=clock)
    results = [sampler.should_sample(make_params()) for _ in range(5)]
    assert [r.sampled for r in results] == [True, True, False, False, False]
    assert [r.reason for r in results] == ["const"] * 2 + ["cap"] * 3
    assert {(r.sampler_type, r.sampler_param) for r in results} == {("const", True)}
    assert sampler.capped == 3
    clock.advance(0.5)
    assert sampler.should_sample(make_params()).sampled


def test_cap_lets_drops_and_record_only_through_without_charging() -> None:
    clock = ManualClock()
    budget = priority.PriorityBudget(1, clock=clock)
    record_only = priority.PrioritySampler(const.ConstSampler(False), budget)
    capped = cap.CappedSampler(record_only, 1, clock=clock)
    for _ in range(5):
        assert capped.should_sample(make_params()).decision is base.Decision.RECORD_ONLY
    assert capped.capped == 0


def test_cap_holds_over_time() -> None:
    clock = ManualClock()
    sampler = cap.CappedSampler(probabilistic.ProbabilisticSampler(1.0), 50, clock=clock)
    sampled = 0
    for _ in range(10_000):  # 1000/s for 10 s
        clock.advance(0.001)
        sampled += sampler.should_sample(make_params()).sampled
    assert 500 <= sampled <= 551


def test_debug_is_forced_only_while_the_gateway_cap_has_room() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(1, clock=clock)
    inner = cap.CappedSampler(const.ConstSampler(False), 1, bucket=bucket)
    registry = metrics.Registry()
    chain = debug.DebugSampler(inner, cap=bucket, registry=registry)
    outcomes = [
        chain.should_sample(make_params(parent_sampled=sampled, debug=True))
        for sampled in (False, None, True)
    ]
    assert [(r.decision, r.reason) for r in outcomes] == [
        (base.Decision.SAMPLE, "debug"),
        (base.Decision.DROP, "cap"),
        (base.Decision.DROP, "cap"),
    ]
    clock.advance(1.0)  # a token again
    assert chain.should_sample(make_params(parent_sampled=None, debug=True)).sampled
    assert chain.forced == 2
    assert not chain.should_sample(make_params(parent_sampled=True)).sampled
    assert chain.describe().startswith("debug[capped](cap(const(false)")
    counter = registry.metrics["gatetrace_sampling_debug_decisions"]
    assert counter.value(("kept",)) == 2 and counter.value(("capped",)) == 2


def test_trusted_debug_passes_the_cap_and_untrusted_does_not() -> None:
    bucket = tokenbucket.TokenBucket(1, clock=ManualClock())
    chain = debug.DebugSampler(const.ConstSampler(False), "trusted", cap=bucket)
    trusted = base.RequestInfo("GET", "/", {}, "", True)
    untrusted = base.RequestInfo("GET", "/", {}, "", False)
    for _ in range(5):
        assert chain.should_sample(
            make_params(parent_sampled=True, debug=True, request=trusted)
        ).sampled
    assert chain.should_sample(
        make_params(parent_sampled=True, debug=True, request=untrusted)
    ).sampled
    assert not chain.should_sample(
        make_params(parent_sampled=True, debug=True, request=untrusted)
    ).sampled


def test_ignored_debug_leaves_the_decision_to_the_chain_as_undecided() -> None:
    chain = debug.DebugSampler(parentbased.ParentBasedSampler(const.ConstSampler(False)), "ignore")
    # B3 "d" reads as sampled + debug: neither counts
    assert not chain.should_sample(make_params(parent_sampled=True, debug=True)).sampled
    with pytest.raises(ValueError, match="debug must be one of trusted, capped, ignore"):
        debug.DebugSampler(const.ConstSampler(False), "always")  # type: ignore[arg-type]


def test_priority_turns_drops_into_record_only_with_the_budget() -> None:
    clock = ManualClock()
    budget = priority.PriorityBudget(5, clock=clock)
    sampler = priority.PrioritySampler(probabilistic.ProbabilisticSampler(0.5), budget)
    dropped = sampler.should_sample(make_params((1 << 64) - 1))
    assert dropped.decision is base.Decision.RECORD_ONLY
    assert dropped.budget is budget
    assert (dropped.sampler_type, dropped.sampler_param, dropped.reason) == (
        "probabilistic",
        0.5,
        "rate",
    )
    kept = sampler.should_sample(make_params(1))
    assert kept.decision is base.Decision.SAMPLE
    assert kept.budget is None


def test_priority_can_leave_explicitly_unsampled_parents_alone() -> None:
    budget = priority.PriorityBudget(5)
    strict = priority.PrioritySampler(
        const.ConstSampler(False), budget, include_unsampled_parents=False
    )
    assert strict.should_sample(make_params(parent_sampled=False)).decision is base.Decision.DROP
    for case in ("none", None):
        assert (
            strict.should_sample(make_params(parent_sampled=case)).decision
            is base.Decision.RECORD_ONLY
        )
    lenient = priority.PrioritySampler(const.ConstSampler(False), budget)
    assert (
        lenient.should_sample(make_params(parent_sampled=False)).decision
        is base.Decision.RECORD_ONLY
    )


def test_priority_budget_grants_per_second_and_counts() -> None:
    clock = ManualClock()
    budget = priority.PriorityBudget(3, clock=clock)
    assert [budget.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    assert (budget.granted, budget.denied) == (3, 2)
    clock.advance(1 / 3)
    assert budget.try_acquire()
    assert not budget.try_acquire()


def test_priority_upgrades_and_exhaustion_are_counted_by_reason() -> None:
    clock = ManualClock()
    registry = metrics.Registry()
    budget = priority.PriorityBudget(2, clock=clock, registry=registry)
    outcomes = [budget.try_acquire(reason) for reason in ("error", "slow", "error", "slow")]
    assert outcomes == [True, True, False, False]
    budget.try_acquire("error")
    upgrades = registry.counter("gatetrace_priority_upgrades", "", ["reason"])
    exhausted = registry.counter("gatetrace_priority_budget_exhausted", "", ["reason"])
    assert dict(upgrades.items()) == {("error",): 1, ("slow",): 1}
    assert dict(exhausted.items()) == {("error",): 2, ("slow",): 1}
    # a second budget (the next config) counts in the same series
    priority.PriorityBudget(1, clock=clock, registry=registry).try_acquire("slow")
    assert upgrades.value(("slow",)) == 2


def test_composites_never_raise_when_a_part_does() -> None:
    budget = priority.PriorityBudget(1)
    chains: list[base.Sampler] = [
        cap.CappedSampler(_Broken(), 10),
        debug.DebugSampler(_Broken()),
        priority.PrioritySampler(_Broken(), budget),
    ]
    for chain in chains:
        result = chain.should_sample(make_params())
        assert result.reason == "sampler_error"
        assert result.decision in (base.Decision.DROP, base.Decision.RECORD_ONLY)
    assert base.decide(_Broken(), make_params()) is base.SAMPLER_ERROR


def test_an_override_cap_within_the_gateway_cap_spends_no_token_the_gateway_refuses() -> None:
    clock = ManualClock()
    gateway = tokenbucket.TokenBucket(1, clock=clock)
    shop = cap.CappedSampler(const.ConstSampler(True), 5, clock=clock, within=gateway)
    other = cap.CappedSampler(const.ConstSampler(True), 1, bucket=gateway)
    assert other.should_sample(make_params()).sampled  # the gateway's one token
    for _ in range(5):  # the gateway refuses: shop's own bucket is not drained meanwhile
        assert not shop.should_sample(make_params()).sampled
    assert shop.capped == 5
    clock.advance(1.0)
    assert shop.should_sample(make_params()).sampled
    assert [round(b.available, 6) for b in shop.buckets] == [4.0, 0.0]
    assert shop.describe() == "cap(const(true), maxTracesPerSecond=5)"


def test_debug_counts_against_every_cap_of_its_chain() -> None:
    clock = ManualClock()
    gateway = tokenbucket.TokenBucket(50, clock=clock)
    own = tokenbucket.TokenBucket(1, clock=clock)
    chain = debug.DebugSampler(const.ConstSampler(False), cap=(own, gateway))
    flagged = make_params(parent_sampled=None, debug=True)
    kept = [chain.should_sample(flagged).sampled for _ in range(10)]
    assert sum(kept) == 1
    assert round(gateway.available) == 49  # the refused ones took nothing from the gateway


def test_a_capped_debug_trace_may_still_be_kept_for_an_error_like_any_capped_trace() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(1, clock=clock)
    budget = priority.PriorityBudget(5, clock=clock)
    chain = debug.DebugSampler(const.ConstSampler(False), cap=bucket, budget=budget)
    flagged = make_params(parent_sampled=True, debug=True)
    assert chain.should_sample(flagged).sampled
    capped = chain.should_sample(flagged)
    assert (capped.decision, capped.reason) == (base.Decision.RECORD_ONLY, "cap")
    assert capped.budget is budget
