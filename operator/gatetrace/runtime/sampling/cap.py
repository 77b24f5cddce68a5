"""The global traces/s cap: a ceiling over any sampler.

Wraps a sampler; each SAMPLE it answers takes a token from a bucket of
``max_traces_per_second`` (bursts up to one second's worth). Without a token,
the decision becomes DROP with reason ``cap`` (the wrapped sampler's type and
parameter are kept, so the metrics show whose traces were capped).
RECORD_ONLY and DROP answers pass unchanged and cost nothing. Chains built
with the same ``bucket`` share one cap (the gateway's total over its
namespace overrides' chains); ``within`` nests a cap inside such a shared one
(a namespace override's own cap): a trace needs a token from both, and one
refused by either takes none from the other.
"""

from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["CappedSampler"]


class CappedSampler:
    """At most ``max_traces_per_second`` of ``inner``'s SAMPLE decisions stay sampled."""

    __slots__ = ("buckets", "capped", "inner", "max_traces_per_second")

    def __init__(
        self,
        inner: _base.Sampler,
        max_traces_per_second: float,
        *,
        clock: _tb.Clock | None = None,
        bucket: _tb.TokenBucket | None = None,
        within: _tb.TokenBucket | None = None,
    ) -> None:
        self.inner = inner
        self.max_traces_per_second = _tb.check_per_second(
            "max_traces_per_second", max_traces_per_second
        )
        own = (
            bucket
            if bucket is not None
            else _tb.TokenBucket(self.max_traces_per_second, clock=clock)
        )
        self.buckets: tuple[_tb.TokenBucket, ...] = (own,) if within is None else (own, within)
        """Each must grant a token; a bucket given to several chains caps them together."""
        self.capped = 0
        """How many sampled decisions the cap turned into drops."""

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        result = _base.decide(self.inner, params)
        if result.decision is not _base.Decision.SAMPLE or _tb.acquire_all(self.buckets):
            return result
        self.capped += 1
        return result._replace(decision=_base.Decision.DROP, reason="cap")

    def describe(self) -> str:
        return f"cap({self.inner.describe()}, maxTracesPerSecond={self.max_traces_per_second:g})"
