"""The probabilistic sampler: a fixed fraction of traces, decided by the trace id.

Which bits: the **lower 64 bits** of the 128-bit trace id, read as an
unsigned integer, are compared with ``round(rate * 2**64)``; the trace is
sampled when they are strictly below it. That is exactly OpenTelemetry's
``TraceIdRatioBased`` (``trace_id & (2**64 - 1) < round(rate * 2**64)``), so
every hop using the same rate -- ours or an OpenTelemetry SDK -- takes the same
decision for the same trace, and a hop with a higher rate samples a superset
of the traces a lower-rate hop samples. Using the low bits also works for
64-bit (B3/Jaeger) trace ids, and W3C level 2's ``random`` flag promises
randomness exactly there.
"""

import math

from gatetrace.runtime.sampling import base as _base

__all__ = ["TRACE_ID_LIMIT", "ProbabilisticSampler", "bound_for_rate", "check_rate"]

TRACE_ID_LIMIT = (1 << 64) - 1
"""Mask of the trace id bits the decision reads (the lower 64)."""


def check_rate(name: str, rate: float) -> float:
    """Validate a probability; the error names the field."""
    if not isinstance(rate, int | float) or isinstance(rate, bool):
        raise TypeError(f"{name} must be a number, got {type(rate).__name__}")
    rate = float(rate)
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {rate}")
    return rate


def bound_for_rate(rate: float) -> int:
    """The exclusive upper bound of sampled ``trace_id & TRACE_ID_LIMIT`` values."""
    return round(rate * (TRACE_ID_LIMIT + 1))


class ProbabilisticSampler:
    """Sample ``rate`` of all traces (``0 <= rate <= 1``); same answer at every hop."""

    __slots__ = ("_bound", "_drop", "_sample", "rate")

    def __init__(self, rate: float) -> None:
        self.rate = check_rate("rate", rate)
        self._bound = bound_for_rate(self.rate)
        self._sample = _base.SamplingResult(
            _base.Decision.SAMPLE, "probabilistic", self.rate, "rate"
        )
        self._drop = _base.SamplingResult(_base.Decision.DROP, "probabilistic", self.rate, "rate")

    def is_sampled(self, trace_id: int) -> bool:
        return (trace_id & TRACE_ID_LIMIT) < self._bound

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        if (params.trace_id & TRACE_ID_LIMIT) < self._bound:
            return self._sample
        return self._drop

    def describe(self) -> str:
        return f"probabilistic(rate={self.rate:g})"
