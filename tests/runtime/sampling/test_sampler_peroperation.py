"""PerOperationSampler: probability OR lower bound per operation, capped operation count."""

import random

import pytest
from samplertools import ManualClock, make_params

from gatetrace.runtime.sampling import peroperation, probabilistic

NEVER = probabilistic.TRACE_ID_LIMIT  # low bits at the top: sampled by no rate below 1
ALWAYS = 1  # sampled by every rate above 2**-64


def test_rare_operation_gets_its_lower_bound() -> None:
    clock = ManualClock()
    sampler = peroperation.PerOperationSampler(0.0, lower_bound_traces_per_second=0.5, clock=clock)
    sampled = []
    for _ in range(20):  # one request every 2 s for 40 s
        clock.advance(2.0)
        sampled.append(sampler.should_sample(make_params(NEVER, "GET /rare")))
    assert all(r.sampled for r in sampled)
    assert {(r.sampler_type, r.sampler_param, r.reason) for r in sampled} == {
        ("lowerbound", 0.5, "lower_bound")
    }


def test_busy_operation_follows_its_probability() -> None:
    clock, rng = ManualClock(), random.Random(4)
    sampler = peroperation.PerOperationSampler(0.1, lower_bound_traces_per_second=1.0, clock=clock)
    results = []
    for _ in range(10_000):  # 1000/s for 10 s
        clock.advance(0.001)
        results.append(sampler.should_sample(make_params(rng.getrandbits(128) or 1, "GET /busy")))
    by_probability = sum(r.sampled and r.sampler_type == "probabilistic" for r in results)
    by_bound = sum(r.sampled and r.sampler_type == "lowerbound" for r in results)
    assert 900 <= by_probability <= 1100
    # the lower bound adds at most its own rate (plus the initial token), as in Jaeger
    assert by_bound <= 11


def test_probability_decisions_charge_the_lower_bound() -> None:
    clock = ManualClock()
    sampler = peroperation.PerOperationSampler(0.5, lower_bound_traces_per_second=1, clock=clock)
    first = sampler.should_sample(make_params(ALWAYS, "op"))
    assert (first.sampled, first.sampler_type) == (True, "probabilistic")
    # the bucket's single token went with that decision: nothing left for a dropped one
    assert not sampler.should_sample(make_params(NEVER, "op")).sampled
    clock.advance(1.0)
    assert sampler.should_sample(make_params(NEVER, "op")).sampler_type == "lowerbound"


def test_operations_have_separate_buckets_and_rates() -> None:
    clock = ManualClock()
    sampler = peroperation.PerOperationSampler(
        0.0,
        lower_bound_traces_per_second=1,
        operation_rates={"checkout": 1.0},
        clock=clock,
    )
    assert sampler.should_sample(make_params(NEVER, "a")).sampled
    assert sampler.should_sample(make_params(NEVER, "b")).sampled
    assert not sampler.should_sample(make_params(NEVER, "a")).sampled
    checkout = sampler.should_sample(make_params(ALWAYS, "checkout"))
    assert (checkout.sampler_type, checkout.sampler_param) == ("probabilistic", 1.0)


def test_operations_beyond_the_cap_share_the_default_without_lower_bound() -> None:
    clock = ManualClock()
    sampler = peroperation.PerOperationSampler(
        0.0, lower_bound_traces_per_second=10, max_operations=3, clock=clock
    )
    for name in ("a", "b", "c"):
        assert sampler.should_sample(make_params(NEVER, name)).sampled
    for index in range(100):
        result = sampler.should_sample(make_params(NEVER, f"extra-{index}"))
        assert not result.sampled
        assert result.sampler_type == "probabilistic"
    assert sampler.operations == 3


def test_zero_lower_bound_is_plain_probabilistic() -> None:
    sampler = peroperation.PerOperationSampler(0.5)
    assert sampler.should_sample(make_params(ALWAYS)).sampled
    assert not sampler.should_sample(make_params(NEVER)).sampled
    assert "maxOperations=2000" in sampler.describe()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"default_rate": 1.5}, "default_rate"),
        ({"default_rate": 0.1, "lower_bound_traces_per_second": -1}, "lower_bound"),
        ({"default_rate": 0.1, "max_operations": 0}, "max_operations"),
        ({"default_rate": 0.1, "operation_rates": {"x": 2.0}}, "operation_rates"),
    ],
)
def test_rejects_bad_settings_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        peroperation.PerOperationSampler(**kwargs)  # type: ignore[arg-type]
