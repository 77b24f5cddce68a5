"""Debug forcing: a caller's debug flag samples the trace, whatever else says.

The propagation formats set ``SpanContext.debug`` from B3's ``d`` /
``X-B3-Flags: 1``, Jaeger's flag bit 2 or ``jaeger-debug-id``. Wrap the whole
sampler chain with :class:`DebugSampler` so it wins over rules, caps and
budgets. The forced decisions are still counted: the tracer's decision
metrics see them with reason ``debug`` (and ``forced`` here counts them).
The wrapped sampler is not consulted for forced traces, so debug traffic
does not drain its rate limiters.
"""

from gatetrace.runtime.sampling import base as _base

__all__ = ["DebugSampler"]

_FORCED = _base.SamplingResult(_base.Decision.SAMPLE, "debug", True, "debug")


class DebugSampler:
    """Sample traces whose remote parent asks for debug; ``inner`` decides the rest."""

    __slots__ = ("forced", "inner")

    def __init__(self, inner: _base.Sampler) -> None:
        self.inner = inner
        self.forced = 0
        """How many traces the debug flag forced."""

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        parent = params.parent
        if parent is not None and parent.debug:
            self.forced += 1
            return _FORCED
        try:  # as _base.decide, inlined: this wraps every root decision
            return self.inner.should_sample(params)
        except Exception:
            return _base.SAMPLER_ERROR

    def describe(self) -> str:
        return f"debug({self.inner.describe()})"
