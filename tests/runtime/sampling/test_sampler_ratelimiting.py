"""TokenBucket and RateLimitingSampler, driven by a manual clock."""

import pytest
from samplertools import ManualClock, make_params

from gatetrace.runtime.sampling import ratelimiting, tokenbucket


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(2.0, clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
    clock.advance(0.25)
    assert not bucket.try_acquire()  # half a token
    clock.advance(0.25)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_bucket_never_holds_more_than_its_capacity() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(5.0, capacity=3, clock=clock)
    clock.advance(3600)
    assert bucket.available == 3
    assert sum(bucket.try_acquire() for _ in range(10)) == 3


def test_slow_rates_still_grant_one_token() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(0.1, clock=clock)  # capacity raised to one token
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(9.9)
    assert not bucket.try_acquire()
    clock.advance(0.2)
    assert bucket.try_acquire()


def test_a_clock_stepping_back_takes_nothing_away() -> None:
    clock = ManualClock()
    bucket = tokenbucket.TokenBucket(1.0, clock=clock)
    clock.advance(-100)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(1.0)
    assert bucket.try_acquire()


def test_sampler_samples_at_most_the_rate_over_time() -> None:
    clock = ManualClock()
    sampler = ratelimiting.RateLimitingSampler(10, clock=clock)
    sampled = 0
    for _ in range(60_00):  # 100 requests per second for 60 s
        clock.advance(0.01)
        sampled += sampler.should_sample(make_params()).sampled
    # 60 s at 10/s plus the initial burst of 10
    assert 600 <= sampled <= 610


def test_sampler_result_fields() -> None:
    clock = ManualClock()
    sampler = ratelimiting.RateLimitingSampler(1.5, clock=clock)
    first = sampler.should_sample(make_params())
    second = sampler.should_sample(make_params())
    assert first.sampled
    assert not second.sampled
    for result in (first, second):
        assert (result.sampler_type, result.sampler_param, result.reason) == (
            "ratelimiting",
            1.5,
            "rate",
        )
    assert sampler.describe() == "rateLimiting(tracesPerSecond=1.5)"


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_rejects_bad_rates_naming_the_field(value: float) -> None:
    with pytest.raises(ValueError, match="traces_per_second"):
        ratelimiting.RateLimitingSampler(value)


def test_uses_the_monotonic_clock_by_default() -> None:
    sampler = ratelimiting.RateLimitingSampler(1)
    assert sampler.should_sample(make_params()).sampled
