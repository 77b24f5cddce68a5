"""Error/latency priority: record what the sampler dropped, keep it if it went wrong.

:class:`PrioritySampler` turns the wrapped sampler's DROP into RECORD_ONLY
carrying a :class:`PriorityBudget`. The tracer then records the local trace
in a :class:`~gatetrace.runtime.span.PendingGroup`; at finish the gateway
calls ``span.upgrade("error")`` / ``span.upgrade("slow")`` when the response
was 5xx, the upstream failed or the request was slower than its threshold.
An upgrade draws one token from the budget (``max_per_second``, one second
of burst); without a token the trace is discarded like any dropped one.

Composition: put it outside the global cap (``PrioritySampler(CappedSampler(...))``)
so traces dropped by the cap can still be kept for errors within the
priority budget, and inside :class:`~.debug.DebugSampler`.
"""

from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["PriorityBudget", "PrioritySampler"]


class PriorityBudget:
    """At most ``max_per_second`` priority upgrades per second; a ``span.UpgradeBudget``.

    With a ``registry``, upgrades granted and refused are counted there by reason
    (``gatetrace_priority_upgrades_total`` and ``gatetrace_priority_budget_exhausted_total``,
    ``reason`` being ``error`` or ``slow``); the series outlive the budget, so the budgets
    of successive configs add up in them."""

    __slots__ = ("_bucket", "_exhausted", "_upgrades", "denied", "granted", "max_per_second")

    def __init__(
        self,
        max_per_second: float,
        *,
        clock: _tb.Clock | None = None,
        registry: _metrics.Registry | None = None,
    ) -> None:
        self.max_per_second = _tb.check_per_second("max_per_second", max_per_second)
        self._bucket = _tb.TokenBucket(self.max_per_second, clock=clock)
        self.granted = 0
        """Upgrades granted so far."""
        self.denied = 0
        """Upgrades refused because the budget was spent."""
        self._upgrades: _metrics.Counter | None = None
        self._exhausted: _metrics.Counter | None = None
        if registry is not None:
            self._upgrades = registry.counter(
                "gatetrace_priority_upgrades",
                "Traces kept by error/latency priority, by reason (error, slow)",
                ["reason"],
            )
            self._exhausted = registry.counter(
                "gatetrace_priority_budget_exhausted",
                "Priority upgrades refused because prioritize.maxPerSecond was spent, by reason",
                ["reason"],
            )

    def try_acquire(self, reason: str = "") -> bool:
        """Draw a token for an upgrade because of ``reason``; False when none is left."""
        if self._bucket.try_acquire():
            self.granted += 1
            if self._upgrades is not None:
                self._upgrades.inc((reason,))
            return True
        self.denied += 1
        if self._exhausted is not None:
            self._exhausted.inc((reason,))
        return False


class PrioritySampler:
    """DROP becomes RECORD_ONLY with ``budget``, so errors and slow requests can be kept.

    ``include_unsampled_parents=False`` leaves traces whose remote parent
    explicitly said "not sampled" dropped (their upstream spans are gone
    anyway); by default they are recorded too, so the gateway's own spans of
    a failing request can still be kept.
    """

    __slots__ = ("budget", "include_unsampled_parents", "inner")

    def __init__(
        self,
        inner: _base.Sampler,
        budget: PriorityBudget,
        *,
        include_unsampled_parents: bool = True,
    ) -> None:
        self.inner = inner
        self.budget = budget
        self.include_unsampled_parents = include_unsampled_parents

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        result = _base.decide(self.inner, params)
        if result.decision is not _base.Decision.DROP:
            return result
        if not self.include_unsampled_parents:
            parent = params.parent
            if parent is not None and parent.sampled is False:
                return result
        return result._replace(decision=_base.Decision.RECORD_ONLY, budget=self.budget)

    def describe(self) -> str:
        return f"priority({self.inner.describe()}, maxPerSecond={self.budget.max_per_second:g})"
