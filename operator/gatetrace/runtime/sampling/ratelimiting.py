"""The rate-limiting sampler: at most N traces per second (token bucket)."""

from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["RateLimitingSampler"]


class RateLimitingSampler:
    """Sample up to ``traces_per_second``, with bursts of up to ``max(1, traces_per_second)``.

    As Jaeger's ``ratelimiting`` sampler: ``sampler.param`` is the rate. The
    decision does not depend on the trace id, so hops may disagree; put it
    behind a parent-based sampler to follow upstream decisions.
    """

    __slots__ = ("_bucket", "_drop", "_sample", "traces_per_second")

    def __init__(self, traces_per_second: float, *, clock: _tb.Clock | None = None) -> None:
        self.traces_per_second = _tb.check_per_second("traces_per_second", traces_per_second)
        self._bucket = _tb.TokenBucket(self.traces_per_second, clock=clock)
        param = self.traces_per_second
        self._sample = _base.SamplingResult(_base.Decision.SAMPLE, "ratelimiting", param, "rate")
        self._drop = _base.SamplingResult(_base.Decision.DROP, "ratelimiting", param, "rate")

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        return self._sample if self._bucket.try_acquire() else self._drop

    def describe(self) -> str:
        return f"rateLimiting(tracesPerSecond={self.traces_per_second:g})"
