"""AdaptiveSampler: steers towards the target, bounded, stable under bursts (manual clock)."""

import random

import pytest
from samplertools import ManualClock, make_params

from gatetrace.runtime.sampling import adaptive


def _drive(
    sampler: adaptive.AdaptiveSampler,
    clock: ManualClock,
    rng: random.Random,
    per_second: int,
    seconds: int,
) -> list[int]:
    """Send ``per_second`` evenly spread requests for ``seconds``; sampled count per second."""
    counts = []
    step = 1.0 / per_second
    for _ in range(seconds):
        sampled = 0
        for _ in range(per_second):
            clock.advance(step)
            sampled += sampler.should_sample(make_params(rng.getrandbits(128) or 1)).sampled
        counts.append(sampled)
    return counts


def test_converges_to_the_target_under_steady_load() -> None:
    clock, rng = ManualClock(), random.Random(11)
    sampler = adaptive.AdaptiveSampler(20, clock=clock)
    _drive(sampler, clock, rng, 1000, 10)
    assert sampler.rate == pytest.approx(0.02, rel=0.1)
    tail = _drive(sampler, clock, rng, 1000, 20)
    assert sum(tail) / len(tail) == pytest.approx(20, rel=0.15)


def test_follows_a_change_in_load_in_bounded_steps() -> None:
    clock, rng = ManualClock(), random.Random(5)
    sampler = adaptive.AdaptiveSampler(10, clock=clock)
    _drive(sampler, clock, rng, 200, 10)
    assert sampler.rate == pytest.approx(0.05, rel=0.1)
    rates = []
    for _ in range(30):
        _drive(sampler, clock, rng, 2000, 1)
        rates.append(sampler.rate)
    # never more than max_step (2x) per window, and settles near 10/2000
    previous = 0.05
    for rate in rates:
        assert previous / 2.0001 <= rate <= previous * 2.0001
        previous = rate
    assert rates[-1] == pytest.approx(0.005, rel=0.15)


def test_stays_within_min_and_max() -> None:
    clock, rng = ManualClock(), random.Random(1)
    low = adaptive.AdaptiveSampler(1000, min_rate=0.01, max_rate=0.2, clock=clock)
    _drive(low, clock, rng, 50, 10)  # the target needs more than max_rate
    assert low.rate == 0.2
    high = adaptive.AdaptiveSampler(0.5, min_rate=0.05, max_rate=1.0, clock=clock)
    _drive(high, clock, rng, 1000, 10)  # the target needs less than min_rate
    assert high.rate == 0.05


def test_is_stable_under_bursty_load() -> None:
    """Bursts of 10x the load every fourth second move the probability a little, not 10x."""
    clock, rng = ManualClock(), random.Random(99)
    sampler = adaptive.AdaptiveSampler(10, clock=clock)
    _drive(sampler, clock, rng, 200, 12)
    steady = sampler.rate
    rates, sampled = [], []
    for second in range(40):
        load = 2000 if second % 4 == 0 else 200
        sampled += _drive(sampler, clock, rng, load, 1)
        rates.append(sampler.rate)
    assert max(rates) / min(rates) < 4  # an undamped controller swings 10x each burst
    # the average load is 650/s, so the sampled average may sit near 10/s
    assert 6 <= sum(sampled) / len(sampled) <= 16
    assert min(rates) < steady  # it did react to the heavier average


def test_idle_gap_counts_as_several_windows() -> None:
    clock, rng = ManualClock(), random.Random(3)
    sampler = adaptive.AdaptiveSampler(5, clock=clock)
    _drive(sampler, clock, rng, 500, 10)
    busy = sampler.rate
    clock.advance(120)  # two minutes without traffic
    sampler.should_sample(make_params(1))
    average = sampler.average_request_rate
    assert average is not None
    assert average < 5
    assert sampler.rate > busy


def test_initial_rate_holds_until_the_first_window_and_then_jumps() -> None:
    clock, rng = ManualClock(), random.Random(8)
    sampler = adaptive.AdaptiveSampler(10, initial_rate=0.5, clock=clock)
    assert sampler.average_request_rate is None
    assert sampler.rate == 0.5
    _drive(sampler, clock, rng, 100, 1)
    assert sampler.rate == 0.5
    clock.advance(0.001)
    sampler.should_sample(make_params(1))  # the window closes on the next decision
    assert sampler.rate == pytest.approx(0.1, rel=0.05)


def test_result_records_the_probability_in_force() -> None:
    clock = ManualClock()
    sampler = adaptive.AdaptiveSampler(10, min_rate=0.01, clock=clock)
    result = sampler.should_sample(make_params((1 << 64) - 1))
    assert (result.sampler_type, result.sampler_param, result.reason) == (
        "adaptive",
        0.01,
        "adaptive",
    )
    assert not result.sampled
    assert sampler.should_sample(make_params(1)).sampled  # low bits below the bound
    assert "target=10/s" in sampler.describe()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_traces_per_second": 0}, "target_traces_per_second"),
        ({"target_traces_per_second": 1, "min_rate": 0.5, "max_rate": 0.1}, "min_rate"),
        ({"target_traces_per_second": 1, "max_rate": 2}, "max_rate"),
        ({"target_traces_per_second": 1, "initial_rate": -1}, "initial_rate"),
        ({"target_traces_per_second": 1, "smoothing": 0}, "smoothing"),
        ({"target_traces_per_second": 1, "damping": 1.5}, "damping"),
        ({"target_traces_per_second": 1, "max_step": 1}, "max_step"),
        ({"target_traces_per_second": 1, "window_seconds": 0}, "window_seconds"),
    ],
)
def test_rejects_bad_settings_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        adaptive.AdaptiveSampler(**kwargs)  # type: ignore[arg-type]
