"""The global traces/s cap: a ceiling over any sampler.

Wraps a sampler; each SAMPLE it answers takes a token from a bucket of
``max_traces_per_second`` (bursts up to one second's worth). Without a token,
the decision becomes DROP with reason ``cap`` (the wrapped sampler's type and
parameter are kept, so the metrics show whose traces were capped).
RECORD_ONLY and DROP answers pass unchanged and cost nothing. Chains built
with the same ``bucket`` share one cap (the gateway's total over its
namespace overrides' chains).
"""

from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["CappedSampler"]


class CappedSampler:
    """At most ``max_traces_per_second`` of ``inner``'s SAMPLE decisions stay sampled."""

    __slots__ = ("_bucket", "capped", "inner", "max_traces_per_second")

    def __init__(
        self,
        inner: _base.Sampler,
        max_traces_per_second: float,
        *,
        clock: _tb.Clock | None = None,
        bucket: _tb.TokenBucket | None = None,
    ) -> None:
        self.inner = inner
        self.max_traces_per_second = _tb.check_per_second(
            "max_traces_per_second", max_traces_per_second
        )
        self._bucket = (
            bucket
            if bucket is not None
            else _tb.TokenBucket(self.max_traces_per_second, clock=clock)
        )
        """Shared by every chain given the same bucket: one cap over all of them."""
        self.capped = 0
        """How many sampled decisions the cap turned into drops."""

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        result = _base.decide(self.inner, params)
        if result.decision is not _base.Decision.SAMPLE or self._bucket.try_acquire():
            return result
        self.capped += 1
        return result._replace(decision=_base.Decision.DROP, reason="cap")

    def describe(self) -> str:
        return f"cap({self.inner.describe()}, maxTracesPerSecond={self.max_traces_per_second:g})"
