"""A :class:`~.base.FailureCounter` backed by the runtime's metrics registry.

Every rejected header (or dropped member) increments
``gatetrace_propagation_failures_total{format, reason}``.
"""

from gatetrace.runtime import metrics

__all__ = ["METRIC_NAME", "MetricsFailureCounter"]

METRIC_NAME = "gatetrace_propagation_failures"


class MetricsFailureCounter:
    """Counts ``failed(format, reason)`` calls in ``registry``."""

    __slots__ = ("counter",)

    def __init__(self, registry: metrics.Registry) -> None:
        self.counter = registry.counter(
            METRIC_NAME,
            "Propagation headers (or members) rejected while extracting or injecting",
            ("format", "reason"),
        )

    def failed(self, fmt: str, reason: str) -> None:
        self.counter.inc((fmt, reason))

    def count(self, fmt: str, reason: str) -> float:
        """How often ``(fmt, reason)`` was counted."""
        return self.counter.value((fmt, reason))
