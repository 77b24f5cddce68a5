"""Per-operation sampling with a guaranteed lower bound (as Jaeger's per-operation sampler).

Each operation (the root span's name) gets a probabilistic sampler at its own
rate (``operation_rates``, else ``default_rate``) OR'ed with a token bucket at
``lower_bound_traces_per_second`` -- Jaeger's
``GuaranteedThroughputProbabilisticSampler``: rarely called operations are
still seen at least that often, busy ones follow their probability. When the
probability samples a trace, the bucket is charged too (if it has a token), so
the lower bound does not add traces to operations the probability already
covers well.

At most ``max_operations`` distinct operations get their own state (memory
stays bounded whatever names arrive); operations beyond that share the
default probability without a lower bound.

Tags: ``sampler.type=probabilistic`` with the rate when the probability
sampled, ``sampler.type=lowerbound`` with the bound when only the lower bound
did -- the values Jaeger clients record.
"""

from collections.abc import Mapping

from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import probabilistic as _prob
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["PerOperationSampler"]


class _Operation:
    """The state of one tracked operation."""

    __slots__ = ("bound", "bucket", "drop", "lower", "sample")

    def __init__(self, rate: float, lower_bound: float, clock: _tb.Clock | None) -> None:
        self.bound = _prob.bound_for_rate(rate)
        self.bucket = _tb.TokenBucket(lower_bound, clock=clock) if lower_bound > 0 else None
        self.sample = _base.SamplingResult(_base.Decision.SAMPLE, "probabilistic", rate, "rate")
        self.drop = _base.SamplingResult(_base.Decision.DROP, "probabilistic", rate, "rate")
        self.lower = _base.SamplingResult(
            _base.Decision.SAMPLE, "lowerbound", lower_bound, "lower_bound"
        )


class PerOperationSampler:
    """Probability per operation OR'ed with a per-operation traces/s lower bound."""

    __slots__ = (
        "_clock",
        "_default",
        "_operations",
        "default_rate",
        "lower_bound_traces_per_second",
        "max_operations",
        "operation_rates",
    )

    def __init__(
        self,
        default_rate: float,
        *,
        lower_bound_traces_per_second: float = 0.0,
        max_operations: int = 2000,
        operation_rates: Mapping[str, float] | None = None,
        clock: _tb.Clock | None = None,
    ) -> None:
        self.default_rate = _prob.check_rate("default_rate", default_rate)
        self.lower_bound_traces_per_second = _tb.check_per_second(
            "lower_bound_traces_per_second", lower_bound_traces_per_second, allow_zero=True
        )
        if isinstance(max_operations, bool) or not isinstance(max_operations, int):
            raise TypeError(f"max_operations must be an int, got {type(max_operations).__name__}")
        if max_operations < 1:
            raise ValueError(f"max_operations must be >= 1, got {max_operations}")
        self.max_operations = max_operations
        self.operation_rates = {
            name: _prob.check_rate(f"operation_rates[{name!r}]", rate)
            for name, rate in (operation_rates or {}).items()
        }
        self._clock = clock
        self._default = _prob.ProbabilisticSampler(self.default_rate)
        self._operations: dict[str, _Operation] = {}

    @property
    def operations(self) -> int:
        """How many distinct operations have their own state."""
        return len(self._operations)

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        state = self._operations.get(params.operation)
        if state is None:
            if len(self._operations) >= self.max_operations:
                return self._default.should_sample(params)
            state = self._operations[params.operation] = _Operation(
                self.operation_rates.get(params.operation, self.default_rate),
                self.lower_bound_traces_per_second,
                self._clock,
            )
        bucket = state.bucket
        if (params.trace_id & _prob.TRACE_ID_LIMIT) < state.bound:
            if bucket is not None:
                bucket.try_acquire()  # keep the lower bound from double-counting
            return state.sample
        if bucket is not None and bucket.try_acquire():
            return state.lower
        return state.drop

    def describe(self) -> str:
        return (
            f"perOperation(defaultRate={self.default_rate:g}, "
            f"lowerBound={self.lower_bound_traces_per_second:g}/s, "
            f"maxOperations={self.max_operations})"
        )
