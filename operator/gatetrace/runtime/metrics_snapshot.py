"""Metrics as plain data, and several processes' metrics merged into one registry.

A gateway with worker processes answers ``/metrics`` for the pod: each worker sends
:func:`snapshot` of its registries (plain tuples, so they cross a process boundary), and
:func:`merge` adds them into one fresh :class:`~.metrics.Registry`:

- counters and histograms are summed series by series (a histogram whose buckets differ
  from the first one seen is refused, and counted in the result's ``conflicts``);
- gauges are summed too (open connections, queued spans: the pod's total), except the
  names in ``owned``: those come from the first snapshot only (the supervisor's: the
  running revision, the build, the store it holds).
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gatetrace.runtime import metrics as _metrics

__all__ = ["Merged", "MetricData", "merge", "snapshot"]


@dataclass(frozen=True, slots=True)
class MetricData:
    """One metric's series, as data: counter and gauge values are floats, a histogram
    series is ``(bucket counts, sum)`` (counts not cumulative, the last one is +Inf)."""

    name: str
    kind: str
    help: str
    labelnames: tuple[str, ...]
    series: tuple[tuple[tuple[str, ...], Any], ...]
    buckets: tuple[float, ...] = ()


def snapshot(registries: Iterable[_metrics.Registry]) -> list[MetricData]:
    """Every metric of ``registries`` (a name seen twice: the first, as rendering does)."""
    found: list[MetricData] = []
    seen: set[str] = set()
    for registry in registries:
        for name, metric in list(registry.metrics.items()):
            if name in seen:
                continue
            seen.add(name)
            data = _data(metric)
            if data is not None:
                found.append(data)
    return found


def _data(metric: Any) -> MetricData | None:
    if isinstance(metric, _metrics.Counter):
        series: tuple[tuple[tuple[str, ...], Any], ...] = tuple(metric.items())
        return MetricData(metric.name, "counter", metric.help, metric.labelnames, series)
    if isinstance(metric, _metrics.Gauge):
        series = tuple(metric.items())
        return MetricData(metric.name, "gauge", metric.help, metric.labelnames, series)
    if isinstance(metric, _metrics.Histogram):
        series = tuple(metric.items())
        return MetricData(
            metric.name, "histogram", metric.help, metric.labelnames, series, metric.buckets
        )
    return None


@dataclass
class Merged:
    """The merged registry and what could not be merged."""

    registry: _metrics.Registry = field(default_factory=_metrics.Registry)
    conflicts: list[str] = field(default_factory=list)
    """``name: problem`` for each metric a snapshot had with another type, labels or buckets."""


def merge(snapshots: Sequence[Sequence[MetricData]], *, owned: Collection[str] = ()) -> Merged:
    """One registry holding the sum of ``snapshots`` (gauges in ``owned``: the first's)."""
    merged = Merged()
    registry = merged.registry
    for position, metrics in enumerate(snapshots):
        for data in metrics:
            if data.kind == "gauge" and data.name in owned and position > 0:
                continue
            try:
                _add(registry, data)
            except ValueError as e:
                merged.conflicts.append(f"{data.name}: {e}")
    return merged


def _add(registry: _metrics.Registry, data: MetricData) -> None:
    if data.kind == "counter":
        counter = registry.counter(data.name, data.help, data.labelnames)
        for labels, value in data.series:
            counter.inc(tuple(labels), float(value))
    elif data.kind == "gauge":
        gauge = registry.gauge(data.name, data.help, data.labelnames)
        for labels, value in data.series:
            gauge.inc(tuple(labels), float(value))
    elif data.kind == "histogram":
        histogram = registry.histogram(data.name, data.help, data.labelnames, data.buckets)
        if histogram.buckets != tuple(data.buckets):
            raise ValueError(f"buckets {data.buckets} differ from {histogram.buckets}")
        for labels, (counts, total) in data.series:
            histogram.add(tuple(labels), counts, float(total))
    else:
        raise ValueError(f"unknown metric type {data.kind!r}")
