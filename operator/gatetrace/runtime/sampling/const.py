"""The const sampler: every trace, or none."""

from gatetrace.runtime.sampling import base as _base

__all__ = ["ConstSampler"]


class ConstSampler:
    """Sample every trace (``decision=True``) or none (``decision=False``).

    Tags the root span ``sampler.type=const``, ``sampler.param=<decision>``,
    as Jaeger clients do.
    """

    __slots__ = ("_result", "decision")

    def __init__(self, decision: bool) -> None:
        if not isinstance(decision, bool):
            raise TypeError(f"decision must be a bool, got {type(decision).__name__}")
        self.decision = decision
        self._result = _base.SamplingResult(
            _base.Decision.SAMPLE if decision else _base.Decision.DROP,
            "const",
            decision,
            "const",
        )

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        return self._result

    def describe(self) -> str:
        return f"const({str(self.decision).lower()})"
