"""The wrappers: global cap, debug forcing, error/latency priority, and fault containment."""

from samplertools import ManualClock, make_params

from gatetrace.runtime.sampling import base, cap, const, debug, priority, probabilistic


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


def test_debug_wins_over_everything_and_is_counted() -> None:
    clock = ManualClock()
    chain = debug.DebugSampler(cap.CappedSampler(const.ConstSampler(False), 1, clock=clock))
    for parent_sampled in (False, None, True):
        result = chain.should_sample(make_params(parent_sampled=parent_sampled, debug=True))
        assert (result.decision, result.sampler_type, result.reason) == (
            base.Decision.SAMPLE,
            "debug",
            "debug",
        )
    assert chain.forced == 3
    assert not chain.should_sample(make_params(parent_sampled=True)).sampled
    assert chain.describe().startswith("debug(cap(const(false)")


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
