"""The in-memory span store behind the query API (the ``memory`` reporter's sink).

Bounded by span count and by age: the oldest spans are evicted first.
Indexed by trace id, by service and by (service, operation), so the Jaeger
query endpoints never scan the whole store to answer ``/api/services`` or a
trace lookup. Everything runs on the event loop: no locks.
"""

import collections
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gatetrace.runtime import span as _span

__all__ = ["Dependency", "SpanStore", "Stats", "TraceQuery", "percentile"]

_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """What ``GET /api/traces`` searches for; every field set must match one span."""

    service: str | None = None
    operation: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    """(key, value) pairs; a span matches when each tag's string form equals the value."""
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    start_ns: int | None = None
    """Spans that started at or after this."""
    end_ns: int | None = None
    """Spans that started at or before this."""
    limit: int = 20
    """At most this many traces, newest first."""


@dataclass(frozen=True, slots=True)
class Dependency:
    """Calls from spans of ``parent`` to child spans of ``child`` (a different service)."""

    parent: str
    child: str
    call_count: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Latency and errors of the matching spans over a window (milliseconds)."""

    count: int
    errors: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    window_seconds: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "errors": self.errors,
            "p50": self.p50_ms,
            "p90": self.p90_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
            "max": self.max_ms,
            "windowSeconds": self.window_seconds,
        }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(slots=True)
class _Entry:
    span: _span.Span
    stored_at: float


@dataclass(slots=True)
class _Trace:
    spans: list[_span.Span] = field(default_factory=list)


def _tag_text(value: _span.TagValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _service(span: _span.Span) -> str:
    return span.resource.service_name


def _release(index: dict[_K, dict[int, int]], key: _K, trace_id: int) -> None:
    """Count one span of ``trace_id`` out of ``index[key]``, dropping empty entries."""
    traces = index.get(key)
    if traces is None:
        return
    left = traces.get(trace_id, 0) - 1
    if left > 0:
        traces[trace_id] = left
    else:
        traces.pop(trace_id, None)
        if not traces:
            del index[key]


class SpanStore:
    """Keeps finished spans for the query API; evicts by count and age.

    ``add`` is the ``SpanSink`` the memory reporter forwards batches to.
    """

    def __init__(
        self,
        *,
        max_spans: int = 100_000,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_spans < 1:
            raise ValueError(f"max_spans must be >= 1, got {max_spans}")
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        self.max_spans = max_spans
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._entries: collections.deque[_Entry] = collections.deque()
        self._traces: dict[int, _Trace] = {}
        # service -> trace id -> number of that service's spans in the trace (insertion ordered)
        self._by_service: dict[str, dict[int, int]] = {}
        # (service, operation) -> trace id -> that operation's span count in the trace
        self._by_operation: dict[tuple[str, str], dict[int, int]] = {}
        # service -> operation -> (kind -> span count)
        self._operations: dict[str, dict[str, dict[_span.SpanKind, int]]] = {}
        self.evicted = 0
        """Spans evicted so far (count or age)."""

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, *, max_spans: int, max_age_seconds: float) -> None:
        """Change the bounds (a new ``memory`` reporter config); evicts at once if smaller."""
        if max_spans < 1 or max_age_seconds <= 0:
            raise ValueError("max_spans must be >= 1 and max_age_seconds > 0")
        self.max_spans = max_spans
        self.max_age_seconds = max_age_seconds
        self.evict()

    # -- writing -----------------------------------------------------------

    def add(self, spans: Iterable[_span.Span]) -> None:
        """Store finished spans (the memory reporter's batch)."""
        now = self._clock()
        for span in spans:
            if span.end_ns is None:
                continue
            self._entries.append(_Entry(span, now))
            trace = self._traces.get(span.trace_id)
            if trace is None:
                trace = self._traces[span.trace_id] = _Trace()
            trace.spans.append(span)
            service = _service(span)
            traces = self._by_service.setdefault(service, {})
            traces[span.trace_id] = traces.get(span.trace_id, 0) + 1
            traces = self._by_operation.setdefault((service, span.name), {})
            traces[span.trace_id] = traces.get(span.trace_id, 0) + 1
            kinds = self._operations.setdefault(service, {}).setdefault(span.name, {})
            kinds[span.kind] = kinds.get(span.kind, 0) + 1
        self.evict(now)

    def evict(self, now: float | None = None) -> int:
        """Drop spans beyond ``max_spans`` and older than ``max_age_seconds``; return how many."""
        if now is None:
            now = self._clock()
        oldest_allowed = now - self.max_age_seconds
        entries = self._entries
        dropped = 0
        while entries and (len(entries) > self.max_spans or entries[0].stored_at < oldest_allowed):
            self._forget(entries.popleft().span)
            dropped += 1
        self.evicted += dropped
        return dropped

    def _forget(self, span: _span.Span) -> None:
        trace = self._traces.get(span.trace_id)
        if trace is not None:
            with contextlib.suppress(ValueError):
                trace.spans.remove(span)
            if not trace.spans:
                del self._traces[span.trace_id]
        service = _service(span)
        _release(self._by_service, service, span.trace_id)
        _release(self._by_operation, (service, span.name), span.trace_id)
        operations = self._operations.get(service)
        if operations is not None:
            kinds = operations.get(span.name)
            if kinds is not None:
                left = kinds.get(span.kind, 0) - 1
                if left > 0:
                    kinds[span.kind] = left
                else:
                    kinds.pop(span.kind, None)
                    if not kinds:
                        del operations[span.name]
                        if not operations:
                            del self._operations[service]

    # -- reading -----------------------------------------------------------

    def trace(self, trace_id: int) -> list[_span.Span]:
        """The spans of one trace, by start time (empty when unknown or evicted)."""
        self.evict()
        trace = self._traces.get(trace_id)
        if trace is None:
            return []
        return sorted(trace.spans, key=lambda s: (s.start_ns, s.span_id))

    def services(self) -> list[str]:
        self.evict()
        return sorted(self._by_service)

    def operations(
        self, service: str, kind: _span.SpanKind | None = None
    ) -> list[tuple[str, _span.SpanKind]]:
        """(operation, kind) pairs seen for ``service``, sorted by name then kind."""
        self.evict()
        found: list[tuple[str, _span.SpanKind]] = []
        for name, kinds in self._operations.get(service, {}).items():
            for span_kind in kinds:
                if kind is None or span_kind is kind:
                    found.append((name, span_kind))
        return sorted(found, key=lambda pair: (pair[0], pair[1].value))

    def _candidate_ids(self, service: str | None, operation: str | None) -> list[int]:
        """Trace ids (oldest first), narrowed by the service and operation indexes."""
        if service is None:
            return list(self._traces)
        if operation is not None:
            return list(self._by_operation.get((service, operation), {}))
        return list(self._by_service.get(service, {}))

    @staticmethod
    def _matches(span: _span.Span, query: TraceQuery) -> bool:
        if query.service is not None and _service(span) != query.service:
            return False
        if query.operation is not None and span.name != query.operation:
            return False
        if query.start_ns is not None and span.start_ns < query.start_ns:
            return False
        if query.end_ns is not None and span.start_ns > query.end_ns:
            return False
        duration = span.duration_ns or 0
        if query.min_duration_ns is not None and duration < query.min_duration_ns:
            return False
        if query.max_duration_ns is not None and duration > query.max_duration_ns:
            return False
        for key, expected in query.tags:
            if key == "error" and expected == "true" and span.is_error:
                continue
            value = span.tags.get(key)
            if value is None or _tag_text(value) != expected:
                return False
        return True

    def find_traces(self, query: TraceQuery) -> list[list[_span.Span]]:
        """Traces with at least one span matching ``query``, newest first, at most ``limit``."""
        self.evict()
        found: list[list[_span.Span]] = []
        if query.limit <= 0:
            return found
        for trace_id in reversed(self._candidate_ids(query.service, query.operation)):
            trace = self._traces.get(trace_id)
            if trace is None:
                continue
            if any(self._matches(span, query) for span in trace.spans):
                found.append(sorted(trace.spans, key=lambda s: (s.start_ns, s.span_id)))
                if len(found) >= query.limit:
                    break
        found.sort(key=lambda spans: min(s.start_ns for s in spans), reverse=True)
        return found

    def dependencies(self, end_ns: int, lookback_ns: int) -> list[Dependency]:
        """Service-to-service call counts from parent/child spans started in the window."""
        self.evict()
        start_ns = end_ns - lookback_ns
        counts: dict[tuple[str, str], int] = {}
        for trace in self._traces.values():
            by_id = {s.span_id: s for s in trace.spans}
            for span in trace.spans:
                if span.parent_id is None or not start_ns <= span.start_ns <= end_ns:
                    continue
                parent = by_id.get(span.parent_id)
                if parent is None:
                    continue
                edge = (_service(parent), _service(span))
                if edge[0] != edge[1]:
                    counts[edge] = counts.get(edge, 0) + 1
        return [Dependency(p, c, n) for (p, c), n in sorted(counts.items())]

    def stats(
        self,
        *,
        service: str | None = None,
        operation: str | None = None,
        window_seconds: float = 300.0,
    ) -> Stats:
        """Count, errors and latency percentiles of spans that ended within the window."""
        self.evict()
        since_ns = int((self._clock() - window_seconds) * 1e9)
        durations: list[float] = []
        errors = 0
        for trace_id in self._candidate_ids(service, operation):
            trace = self._traces.get(trace_id)
            if trace is None:
                continue
            for span in trace.spans:
                if service is not None and _service(span) != service:
                    continue
                if operation is not None and span.name != operation:
                    continue
                if span.end_ns is None or span.end_ns < since_ns:
                    continue
                durations.append((span.end_ns - span.start_ns) / 1e6)
                if span.is_error:
                    errors += 1
        durations.sort()
        return Stats(
            count=len(durations),
            errors=errors,
            p50_ms=percentile(durations, 0.50),
            p90_ms=percentile(durations, 0.90),
            p95_ms=percentile(durations, 0.95),
            p99_ms=percentile(durations, 0.99),
            max_ms=durations[-1] if durations else 0.0,
            window_seconds=window_seconds,
        )
