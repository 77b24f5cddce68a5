"""Per-reporter metrics of the batching engine, registered in a shared registry.

Every series carries ``reporter`` (the exporter's type: ``zipkin``,
``otlpHttp``...) and ``reporter_instance`` (which of several reporters of
that type; ``"0"`` for the first). The label is not called ``instance``
because Prometheus attaches its own ``instance`` label to every scraped
series. Counters live in the registry, not in the engine, so a config swap
that replaces an engine keeps counting on the same series.
"""

from collections.abc import Callable

from gatetrace.runtime import metrics

__all__ = ["DROP_REASONS", "EXPORT_BUCKETS", "ReporterMetrics"]

DROP_REASONS = ("queue_full", "too_large", "export_failed", "rejected", "shutdown")
"""Why spans are dropped: full queue, cannot fit a datagram, export gave up,
backend refused them (OTLP partial success), still queued at shutdown."""

EXPORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ReporterMetrics:
    """The series one reporter updates; cheap to update from the hot path."""

    __slots__ = (
        "batches",
        "dropped",
        "export_failures",
        "export_seconds",
        "exported",
        "labels",
        "queue_depth",
        "queued",
        "truncated",
    )

    def __init__(self, registry: metrics.Registry, reporter: str, instance: str = "0") -> None:
        self.labels: metrics.Labels = (reporter, instance)
        base = ["reporter", "reporter_instance"]
        r = registry
        self.queued = r.counter(
            "gatetrace_reporter_spans_queued", "Spans accepted into a reporter's queue", base
        )
        self.exported = r.counter(
            "gatetrace_reporter_spans_exported", "Spans a reporter's backend accepted", base
        )
        self.dropped = r.counter(
            "gatetrace_reporter_spans_dropped",
            "Spans a reporter dropped, by reason",
            [*base, "reason"],
        )
        self.batches = r.counter(
            "gatetrace_reporter_batches", "Batches exported (one per export attempt)", base
        )
        self.export_failures = r.counter(
            "gatetrace_reporter_export_failures",
            "Failed export attempts, by reason (connection_refused, timeout, http_503...)",
            [*base, "reason"],
        )
        self.truncated = r.counter(
            "gatetrace_reporter_values_truncated",
            "Values an encoder cut or replaced to stay encodable, by what",
            [*base, "what"],
        )
        self.export_seconds = r.histogram(
            "gatetrace_reporter_export_seconds",
            "Duration of export attempts",
            base,
            buckets=EXPORT_BUCKETS,
        )
        self.queue_depth = r.gauge(
            "gatetrace_reporter_queue_depth", "Spans waiting in a reporter's queue", base
        )

    def forget(self) -> None:
        """Remove this reporter's series (it was removed from the config)."""
        for metric in (
            self.queued,
            self.exported,
            self.dropped,
            self.batches,
            self.export_failures,
            self.truncated,
            self.export_seconds,
            self.queue_depth,
        ):
            metric.remove(self.labels)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth, self.labels)

    def drop(self, reason: str, amount: int) -> None:
        if amount:
            self.dropped.inc((*self.labels, reason), amount)

    def dropped_count(self, reason: str) -> float:
        return self.dropped.value((*self.labels, reason))

    def failure(self, reason: str) -> None:
        self.export_failures.inc((*self.labels, reason))

    def failure_count(self, reason: str) -> float:
        return self.export_failures.value((*self.labels, reason))

    def truncation(self, what: str, amount: int) -> None:
        if amount:
            self.truncated.inc((*self.labels, what), amount)
