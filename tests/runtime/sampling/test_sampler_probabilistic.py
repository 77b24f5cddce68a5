"""ProbabilisticSampler: lower 64 bits vs round(rate * 2**64), exactly as TraceIdRatioBased."""

import random

import pytest
from opentelemetry.sdk.trace import sampling as otel_sampling
from samplertools import make_params

from gatetrace.runtime import ids
from gatetrace.runtime.sampling import base, probabilistic

RATES = [0.0, 1e-9, 1e-6, 0.001, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.999, 1.0]


def _ids(seed: int, count: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(128) or 1 for _ in range(count)]


@pytest.mark.parametrize("rate", RATES)
def test_agrees_with_opentelemetry_trace_id_ratio_based(rate: float) -> None:
    ours = probabilistic.ProbabilisticSampler(rate)
    theirs = otel_sampling.TraceIdRatioBased(rate)
    assert probabilistic.bound_for_rate(rate) == theirs.bound
    bound = theirs.bound
    # random ids, plus the ids right at the boundary (in the low 64 bits, any high bits)
    edge = [b & probabilistic.TRACE_ID_LIMIT for b in (bound - 1, bound, bound + 1) if b > 0]
    candidates = _ids(seed=2024, count=2000) + edge + [(0xABC << 64) | e for e in edge]
    for trace_id in candidates:
        if not trace_id:
            continue
        want = theirs.should_sample(None, trace_id, "op").decision.is_sampled()
        got = ours.should_sample(make_params(trace_id=trace_id))
        assert got.sampled is want, f"trace {trace_id:032x} at rate {rate}"


def test_reads_only_the_lower_64_bits() -> None:
    sampler = probabilistic.ProbabilisticSampler(0.5)
    low_sampled = 1 << 62  # below 2**63
    low_dropped = 1 << 63
    for high in (0, 1, 0xFFFF_FFFF_FFFF_FFFF):
        assert sampler.should_sample(make_params(trace_id=(high << 64) | low_sampled)).sampled
        assert not sampler.should_sample(make_params(trace_id=(high << 64) | low_dropped)).sampled
    assert sampler.is_sampled(low_sampled)
    assert not sampler.is_sampled(low_dropped)


def test_rate_zero_samples_nothing_and_one_everything() -> None:
    none, every = probabilistic.ProbabilisticSampler(0), probabilistic.ProbabilisticSampler(1)
    for trace_id in [1, probabilistic.TRACE_ID_LIMIT, 2**128 - 1, *_ids(1, 500)]:
        assert not none.should_sample(make_params(trace_id=trace_id)).sampled
        assert every.should_sample(make_params(trace_id=trace_id)).sampled


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_sampled_fraction_is_close_to_the_rate(rate: float) -> None:
    sampler = probabilistic.ProbabilisticSampler(rate)
    trace_ids = _ids(seed=7, count=40_000)
    fraction = sum(sampler.should_sample(make_params(t)).sampled for t in trace_ids) / 40_000
    # five standard deviations of a binomial proportion
    assert abs(fraction - rate) < 5 * (rate * (1 - rate) / 40_000) ** 0.5


def test_every_hop_agrees_and_higher_rates_sample_a_superset() -> None:
    low = probabilistic.ProbabilisticSampler(0.1)
    low_again = probabilistic.ProbabilisticSampler(0.1)
    high = probabilistic.ProbabilisticSampler(0.3)
    for trace_id in _ids(seed=3, count=5000):
        first = low.should_sample(make_params(trace_id)).sampled
        assert low_again.should_sample(make_params(trace_id)).sampled is first
        if first:
            assert high.should_sample(make_params(trace_id)).sampled


def test_result_carries_type_param_and_reason() -> None:
    sampler = probabilistic.ProbabilisticSampler(0.25)
    for trace_id in (1, probabilistic.TRACE_ID_LIMIT):
        result = sampler.should_sample(make_params(trace_id))
        assert (result.sampler_type, result.sampler_param, result.reason) == (
            "probabilistic",
            0.25,
            "rate",
        )
    assert sampler.should_sample(make_params(1)).decision is base.Decision.SAMPLE
    assert sampler.describe() == "probabilistic(rate=0.25)"


def test_works_with_generated_ids() -> None:
    sampler = probabilistic.ProbabilisticSampler(0.5)
    decisions = {sampler.should_sample(make_params(ids.new_trace_id())).sampled for _ in range(200)}
    assert decisions == {True, False}


@pytest.mark.parametrize("rate", [-0.1, 1.01, float("nan"), float("inf")])
def test_rejects_rates_outside_0_1_naming_the_field(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        probabilistic.ProbabilisticSampler(rate)


def test_rejects_a_non_number() -> None:
    with pytest.raises(TypeError, match="rate"):
        probabilistic.ProbabilisticSampler("0.5")  # type: ignore[arg-type]
