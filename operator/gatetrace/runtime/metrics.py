"""Minimal in-process metrics: counters, gauges and histograms with labels.

Kept dependency-free on purpose; :func:`render_prometheus` writes the
Prometheus text exposition format (0.0.4) that the gateway's ``/metrics``
serves. Updates are plain dict operations, cheap enough for the hot path.
"""

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "CONTENT_TYPE",
    "Counter",
    "Gauge",
    "Histogram",
    "Labels",
    "Registry",
    "Sample",
    "Tally",
    "latency_buckets",
    "render_prometheus",
]

Labels = tuple[str, ...]
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of :func:`render_prometheus`'s output (what Prometheus expects)."""


def latency_buckets(longest_seconds: float) -> tuple[float, ...]:
    """:data:`DEFAULT_BUCKETS` extended on the same 1-2.5-5 ladder up to ``longest_seconds``,
    which is the last finite bound: a request that runs until its timeout lands in a
    bucket of its own instead of only in ``+Inf``."""
    if not longest_seconds > 0 or math.isinf(longest_seconds):
        raise ValueError(f"longest_seconds must be a positive number, got {longest_seconds!r}")
    buckets = [b for b in DEFAULT_BUCKETS if b < longest_seconds]
    decade = 10.0
    while decade < longest_seconds:
        buckets.extend(step * decade for step in (1.0, 2.5, 5.0) if step * decade < longest_seconds)
        decade *= 10
    buckets.append(float(longest_seconds))
    return tuple(buckets)


@dataclass(frozen=True, slots=True)
class Sample:
    suffix: str
    labels: tuple[tuple[str, str], ...]
    value: float


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)

    def _pairs(self, labels: Labels) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.labelnames, labels, strict=True))

    def samples(self) -> Iterator[Sample]:
        raise NotImplementedError

    def remove(self, prefix: Labels) -> None:
        """Drop every series whose label values start with ``prefix`` (a component that
        is gone, e.g. a reporter removed from the config, leaves no stale series)."""
        n = len(prefix)
        for store in self._series():
            for labels in [k for k in store if k[:n] == prefix]:
                del store[labels]

    def _series(self) -> tuple[dict[Labels, Any], ...]:
        return ()


class Tally:
    """A bare count for the hottest paths (``tally.n += 1``: no call, no label lookup),
    added to the series of every :class:`Counter` it is attached to."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}
        self._tallies: dict[Labels, list[Tally]] = {}
        self._functions: dict[Labels, Callable[[], float]] = {}

    def set_function(self, function: Callable[[], float], labels: Labels = ()) -> None:
        """Read the ``labels`` series from ``function`` at collection time: a total kept
        elsewhere (the CPU time the kernel counts, a budget's refusals)."""
        if len(labels) != len(self.labelnames):
            raise ValueError(
                f"{self.name}: {len(labels)} label values {labels} for the label names "
                f"{self.labelnames}"
            )
        self._functions[labels] = function

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        values = self._values
        values[labels] = values.get(labels, 0) + amount

    def tally(self, labels: Labels = ()) -> Tally:
        """The tally counted in the ``labels`` series (made and attached on first use, so
        every caller sharing this counter shares it too)."""
        attached = self._tallies.get(labels)
        if attached:
            return attached[0]
        tally = Tally()
        self.attach(tally, labels)
        return tally

    def attach(self, tally: Tally, labels: Labels = ()) -> None:
        """Count ``tally.n`` in the ``labels`` series from now on (once per tally)."""
        if len(labels) != len(self.labelnames):
            raise ValueError(
                f"{self.name}: {len(labels)} label values {labels} for the label names "
                f"{self.labelnames}"
            )
        attached = self._tallies.setdefault(labels, [])
        if all(t is not tally for t in attached):
            attached.append(tally)

    def value(self, labels: Labels = ()) -> float:
        extra = self._tallies.get(labels)
        value = self._values.get(labels, 0)
        function = self._functions.get(labels)
        if function is not None:
            value += function()
        return value + sum(t.n for t in extra) if extra else value

    def total(self) -> float:
        return sum(value for _, value in self.items())

    def items(self) -> Iterator[tuple[Labels, float]]:
        merged = dict(self._values)
        for labels, tallies in list(self._tallies.items()):
            merged[labels] = merged.get(labels, 0) + sum(t.n for t in tallies)
        for labels, function in list(self._functions.items()):
            merged[labels] = merged.get(labels, 0) + function()
        return iter(list(merged.items()))

    def samples(self) -> Iterator[Sample]:
        for labels, value in self.items():
            yield Sample("_total", self._pairs(labels), value)

    def _series(self) -> tuple[dict[Labels, Any], ...]:
        return (self._values, self._tallies, self._functions)


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}
        self._functions: dict[Labels, Callable[[], float]] = {}

    def set(self, value: float, labels: Labels = ()) -> None:
        self._values[labels] = value

    def inc(self, labels: Labels = (), amount: float = 1) -> None:
        self._values[labels] = self._values.get(labels, 0) + amount

    def set_function(self, function: Callable[[], float], labels: Labels = ()) -> None:
        """Read the value from ``function`` at collection time (queue depth, ...)."""
        self._functions[labels] = function

    def value(self, labels: Labels = ()) -> float:
        function = self._functions.get(labels)
        return function() if function is not None else self._values.get(labels, 0)

    def items(self) -> Iterator[tuple[Labels, float]]:
        """Every series' current value (functions read now)."""
        found = dict(self._values)
        for labels, function in list(self._functions.items()):
            found[labels] = function()
        return iter(list(found.items()))

    def samples(self) -> Iterator[Sample]:
        for labels, value in list(self._values.items()):
            yield Sample("", self._pairs(labels), value)
        for labels, function in list(self._functions.items()):
            yield Sample("", self._pairs(labels), function())

    def _series(self) -> tuple[dict[Labels, Any], ...]:
        return (self._values, self._functions)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        counts = self._counts.get(labels)
        if counts is None:
            counts = self._counts[labels] = [0] * (len(self.buckets) + 1)
        index = 0
        for bound in self.buckets:
            if value <= bound:
                break
            index += 1
        counts[index] += 1
        self._sums[labels] = self._sums.get(labels, 0.0) + value

    def count(self, labels: Labels = ()) -> int:
        return sum(self._counts.get(labels, ()))

    def items(self) -> Iterator[tuple[Labels, tuple[tuple[int, ...], float]]]:
        """Every series as ``(bucket counts, sum)``; counts per bucket, +Inf last."""
        return iter(
            [
                (labels, (tuple(counts), self._sums.get(labels, 0.0)))
                for labels, counts in list(self._counts.items())
            ]
        )

    def add(self, labels: Labels, counts: Sequence[int], total: float) -> None:
        """Add another histogram's series (same buckets: ``len(buckets) + 1`` counts)."""
        if len(counts) != len(self.buckets) + 1:
            raise ValueError(
                f"{self.name}: {len(counts)} bucket counts for {len(self.buckets)} buckets + Inf"
            )
        mine = self._counts.get(labels)
        if mine is None:
            mine = self._counts[labels] = [0] * (len(self.buckets) + 1)
        for index, count in enumerate(counts):
            mine[index] += int(count)
        self._sums[labels] = self._sums.get(labels, 0.0) + total

    def samples(self) -> Iterator[Sample]:
        for labels, counts in list(self._counts.items()):
            pairs = self._pairs(labels)
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += count
                le = "+Inf" if math.isinf(bound) else repr(bound)
                yield Sample("_bucket", (*pairs, ("le", le)), cumulative)
            yield Sample("_sum", pairs, self._sums.get(labels, 0.0))
            yield Sample("_count", pairs, cumulative)

    def _series(self) -> tuple[dict[Labels, Any], ...]:
        return (self._counts, self._sums)


_M = TypeVar("_M", bound=_Metric)


@dataclass
class Registry:
    """A named set of metrics; components own one and the gateway renders them all."""

    metrics: dict[str, _Metric] = field(default_factory=dict)

    def _get(self, cls: type[_M], name: str, help: str, labelnames: Sequence[str]) -> _M:
        existing = self.metrics.get(name)
        if existing is not None:
            if not isinstance(existing, cls) or existing.labelnames != tuple(labelnames):
                raise ValueError(f"metric {name!r} already registered with another type/labels")
            return existing
        metric = cls(name, help, labelnames)
        self.metrics[name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, help, labelnames)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._get(Gauge, name, help, labelnames)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        metric = self._get(Histogram, name, help, labelnames)
        if metric.buckets != tuple(sorted(buckets)) and not metric._counts:
            metric.buckets = tuple(sorted(buckets))
        return metric


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render_prometheus(registries: Iterable[Registry]) -> str:
    """The text exposition format of every metric; a name seen twice is rendered once."""
    lines: list[str] = []
    seen: set[str] = set()
    for registry in registries:
        for name, metric in list(registry.metrics.items()):
            if name in seen:
                continue
            seen.add(name)
            help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
            # In format 0.0.4 HELP/TYPE name the samples' own name, so a
            # counter's family is ``<name>_total``; otherwise parsers
            # (Prometheus, prometheus_client) see untyped samples.
            family = f"{name}_total" if metric.kind == "counter" else name
            lines.append(f"# HELP {family} {help_text}")
            lines.append(f"# TYPE {family} {metric.kind}")
            for sample in metric.samples():
                if sample.labels:
                    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
                    lines.append(f"{name}{sample.suffix}{{{body}}} {_format_value(sample.value)}")
                else:
                    lines.append(f"{name}{sample.suffix} {_format_value(sample.value)}")
    return "\n".join(lines) + "\n"
