"""The in-memory span store behind the query API (the ``memory`` reporter's sink).

Bounded by span count, by bytes (an estimate of what each span retains: its tags
and logs are client-controlled strings) and by age: the oldest spans are evicted
first. Each trace is bounded too (spans and bytes): one client reusing one
``traceparent`` cannot grow a trace without end; spans past a trace's bound are
dropped and counted (``dropped``). Indexed by trace id, by service and by
(service, operation), so the Jaeger query endpoints never scan the whole store to
answer ``/api/services`` or a trace lookup. Everything runs on the event loop: no
locks. Searches, dependencies and stats that must scan have ``async`` forms
(:meth:`SpanStore.find_traces_async`...) that yield to the loop every
:data:`STEP` spans, so a query never holds the proxy up for long.
"""

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gatetrace.gateway import span_size, stepwise
from gatetrace.runtime import span as _span

__all__ = [
    "STEP",
    "Dependency",
    "SpanStore",
    "Stats",
    "TraceQuery",
    "percentile",
    "retained_bytes",
]

_K = TypeVar("_K")

STEP = stepwise.STEP
"""Spans a scanning query looks at before it yields to the event loop."""
retained_bytes = span_size.retained_bytes
percentile = stepwise.percentile
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_SPANS_PER_TRACE = 5_000


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


@dataclass(slots=True)
class _Entry:
    span: _span.Span
    stored_at: float
    size: int


@dataclass(slots=True)
class _Trace:
    spans: list[_span.Span] = field(default_factory=list)
    size: int = 0


def _tag_text(value: _span.TagValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _service(span: _span.Span) -> str:
    return span.resource.service_name


def _within(spans: Sequence[_span.Span], start_ns: int, end_ns: int) -> bool:
    """Whether a trace's spans all start and end inside ``[start_ns, end_ns]``."""
    first = min(s.start_ns for s in spans)
    last = max(s.end_ns if s.end_ns is not None else s.start_ns for s in spans)
    return start_ns <= first and last <= end_ns


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
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._entries: collections.deque[_Entry] = collections.deque()
        self._traces: dict[int, _Trace] = {}
        # service -> trace id -> number of that service's spans in the trace (insertion ordered)
        self._by_service: dict[str, dict[int, int]] = {}
        # (service, operation) -> trace id -> that operation's span count in the trace
        self._by_operation: dict[tuple[str, str], dict[int, int]] = {}
        # service -> operation -> (kind -> span count)
        self._operations: dict[str, dict[str, dict[str, int]]] = {}
        """service -> operation -> span kind (its value) -> spans held."""
        self.bytes = 0
        """Estimated bytes of the spans held (:func:`retained_bytes`)."""
        self.evicted = 0
        """Spans evicted so far (count, bytes or age)."""
        self.dropped = 0
        """Spans refused because their trace was at its bound."""
        self.dropped_by_reason: dict[str, int] = {}
        """:attr:`dropped` by reason (``trace_spans``, ``trace_bytes``)."""
        self._settling: asyncio.Task[None] | None = None
        self.configure(
            max_spans=max_spans,
            max_age_seconds=max_age_seconds,
            max_bytes=max_bytes,
            max_spans_per_trace=max_spans_per_trace,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def configure(
        self,
        *,
        max_spans: int,
        max_age_seconds: float,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE,
    ) -> None:
        """Change the bounds (a new ``memory`` reporter config); evicts at once if smaller."""
        if max_spans < 1:
            raise ValueError(f"max_spans must be >= 1, got {max_spans}")
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds}")
        if max_bytes < 1 or max_spans_per_trace < 1:
            raise ValueError("max_bytes and max_spans_per_trace must be >= 1")
        self.max_spans = max_spans
        self.max_age_seconds = max_age_seconds
        self.max_bytes = max_bytes
        self.max_spans_per_trace = max_spans_per_trace
        self.max_trace_bytes = max(1024 * 1024, max_bytes // 16)
        """One trace holds at most this many bytes (a sixteenth of the store, >= 1 MiB)."""
        if self.evict(at_most=STEP) < STEP:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a tool, a synchronous test): no one to hold up
            self.evict()
            return
        # a smaller bound on a running gateway: the rest in steps, the proxy runs between
        if self._settling is None or self._settling.done():
            self._settling = loop.create_task(self.evict_async())

    # -- writing -----------------------------------------------------------

    def add(
        self,
        spans: Iterable[_span.Span],
        *,
        shared_bytes: int = 0,
        sizes: Sequence[int] | None = None,
    ) -> dict[str, int]:
        """Store finished spans (the memory reporter's batch, the OTLP receiver's); return
        how many were refused, by reason (``trace_spans``, ``trace_bytes``: their trace was
        at its bound). ``shared_bytes`` is counted with each span on top of its own size:
        what the spans keep alive together (a received resource), counted for each so the
        byte bound is never underestimated. ``sizes``: each span's
        :func:`~gatetrace.runtime.span_size.retained_bytes`, measured already (by the gateway
        worker that shipped them)."""
        now = self._clock()
        added = added_bytes = 0
        refused: dict[str, int] = {}
        traces_by_id = self._traces
        by_service = self._by_service
        by_operation = self._by_operation
        operations = self._operations
        per_trace = self.max_spans_per_trace
        for index, span in enumerate(spans):
            if span.end_ns is None:
                continue
            size = (retained_bytes(span) if sizes is None else sizes[index]) + shared_bytes
            trace_id = span.context.trace_id
            trace = traces_by_id.get(trace_id)
            if trace is not None and len(trace.spans) >= per_trace:
                reason = "trace_spans"
            elif (trace.size if trace is not None else 0) + size > self.max_trace_bytes:
                reason = "trace_bytes"  # a lone span that big too: it would empty the store
            else:
                reason = ""
            if reason:
                self.dropped += 1
                refused[reason] = refused.get(reason, 0) + 1
                self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + 1
                continue
            if trace is None:
                trace = traces_by_id[trace_id] = _Trace()
            self._entries.append(_Entry(span, now, size))
            trace.spans.append(span)
            trace.size += size
            self.bytes += size
            added += 1
            added_bytes += size
            service = span.resource.service_name
            name = span.name
            traces = by_service.get(service)
            if traces is None:
                traces = by_service[service] = {}
            traces[trace_id] = traces.get(trace_id, 0) + 1
            key = (service, name)
            traces = by_operation.get(key)
            if traces is None:
                traces = by_operation[key] = {}
            traces[trace_id] = traces.get(trace_id, 0) + 1
            kinds = operations.setdefault(service, {}).setdefault(name, {})
            kind = span.kind.value  # a str key: an Enum's hash is Python code
            kinds[kind] = kinds.get(kind, 0) + 1
        # Work in proportion to what came in: room for this batch (each evicted span frees
        # one count and at least MIN_SPAN_BYTES) plus one STEP of any backlog (spans aged out
        # during a quiet spell, a smaller bound just configured), so the store stays within
        # its bounds yet one batch never evicts the whole store in the proxy's turn.
        self.evict(now, at_most=added + added_bytes // span_size.MIN_SPAN_BYTES + 1 + STEP)
        return refused

    def evict(self, now: float | None = None, *, at_most: int | None = None) -> int:
        """Drop spans beyond ``max_spans`` or ``max_bytes`` and older than
        ``max_age_seconds`` (oldest first, ``at_most`` of them); return how many."""
        if now is None:
            now = self._clock()
        oldest_allowed = now - self.max_age_seconds
        entries = self._entries
        dropped = 0
        while entries and (
            len(entries) > self.max_spans
            or self.bytes > self.max_bytes
            or entries[0].stored_at < oldest_allowed
        ):
            if at_most is not None and dropped >= at_most:
                break
            entry = entries.popleft()
            self.bytes -= entry.size
            self._forget(entry.span, entry.size)
            dropped += 1
        self.evicted += dropped
        return dropped

    async def evict_async(self) -> None:
        """:meth:`evict` in steps of :data:`STEP` spans (what queries call first: after a
        quiet hour, every span may have aged out at once)."""
        now = self._clock()
        for _ in range(len(self._entries) // STEP + 1):
            if self.evict(now, at_most=STEP) < STEP:
                return
            await asyncio.sleep(0)  # let the proxy run between steps

    def _forget(self, span: _span.Span, size: int) -> None:
        trace = self._traces.get(span.trace_id)
        if trace is not None:
            with contextlib.suppress(ValueError):
                trace.spans.remove(span)
            trace.size -= size
            if not trace.spans:
                del self._traces[span.trace_id]
        service = _service(span)
        _release(self._by_service, service, span.trace_id)
        _release(self._by_operation, (service, span.name), span.trace_id)
        operations = self._operations.get(service)
        if operations is not None:
            kinds = operations.get(span.name)
            if kinds is not None:
                kind = span.kind.value
                left = kinds.get(kind, 0) - 1
                if left > 0:
                    kinds[kind] = left
                else:
                    kinds.pop(kind, None)
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

    async def traces_async(self, trace_ids: Iterable[int]) -> list[list[_span.Span]]:
        """:meth:`trace` of each id (an empty list for an unknown one), yielding to the
        event loop every :data:`STEP` spans."""
        await self.evict_async()
        return await stepwise.drive_async(self._traces_of(trace_ids))

    def _traces_of(self, trace_ids: Iterable[int]) -> Generator[None, None, list[list[_span.Span]]]:
        found: list[list[_span.Span]] = []
        budget = STEP
        for trace_id in trace_ids:
            trace = self._traces.get(trace_id)
            spans = tuple(trace.spans) if trace is not None else ()
            budget -= len(spans)
            if budget <= 0:
                yield
                budget = STEP
            found.append(sorted(spans, key=lambda s: (s.start_ns, s.span_id)))
        return found

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
            for value in kinds:
                span_kind = _span.SpanKind(value)
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
        return stepwise.drive(self._find_traces(query))

    async def find_traces_async(self, query: TraceQuery) -> list[list[_span.Span]]:
        """:meth:`find_traces`, yielding to the event loop every :data:`STEP` spans."""
        await self.evict_async()
        return await stepwise.drive_async(self._find_traces(query))

    def _find_traces(self, query: TraceQuery) -> Generator[None, None, list[list[_span.Span]]]:
        found: list[tuple[int, list[_span.Span]]] = []
        if query.limit <= 0:
            return []
        # a span is compared with each tag asked for: a step is STEP spans' worth of that
        cost = 1 + len(query.tags)
        budget = STEP
        for trace_id in reversed(self._candidate_ids(query.service, query.operation)):
            trace = self._traces.get(trace_id)
            if trace is None:
                continue
            spans = tuple(trace.spans)  # the store may change while we yield
            budget -= len(spans) * cost
            if budget <= 0:
                yield
                budget = STEP
            if any(self._matches(span, query) for span in spans):
                ordered = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
                found.append((ordered[0].start_ns, ordered))
                if len(found) >= query.limit:
                    break
        found.sort(key=lambda started: started[0], reverse=True)
        return [spans for _, spans in found]

    def dependencies(self, end_ns: int, lookback_ns: int) -> list[Dependency]:
        """Call counts between services, as Jaeger's query service reports them: every
        span whose parent is in the same trace counts one ``parent service -> child
        service`` call (a service's own spans too: a service calling itself through the
        gateway is an edge), over the traces that lie wholly inside the window (their
        first start and last end within ``[end_ns - lookback_ns, end_ns]``)."""
        self.evict()
        return stepwise.drive(self._dependencies(end_ns, lookback_ns))

    async def dependencies_async(self, end_ns: int, lookback_ns: int) -> list[Dependency]:
        """:meth:`dependencies`, yielding to the event loop every :data:`STEP` spans."""
        await self.evict_async()
        return await stepwise.drive_async(self._dependencies(end_ns, lookback_ns))

    def _dependencies(
        self, end_ns: int, lookback_ns: int
    ) -> Generator[None, None, list[Dependency]]:
        start_ns = end_ns - lookback_ns
        counts: dict[tuple[str, str], int] = {}
        budget = STEP
        for trace in list(self._traces.values()):
            spans = tuple(trace.spans)
            budget -= len(spans)
            if budget <= 0:
                yield
                budget = STEP
            if not spans or not _within(spans, start_ns, end_ns):
                continue
            by_id = {s.span_id: s for s in spans}
            for span in spans:
                if span.parent_id is None:
                    continue
                parent = by_id.get(span.parent_id)
                if parent is None:
                    continue
                edge = (_service(parent), _service(span))
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
        return stepwise.drive(self._stats(service, operation, window_seconds))

    async def stats_async(
        self,
        *,
        service: str | None = None,
        operation: str | None = None,
        window_seconds: float = 300.0,
    ) -> Stats:
        """:meth:`stats`, yielding to the event loop every :data:`STEP` spans."""
        await self.evict_async()
        return await stepwise.drive_async(self._stats(service, operation, window_seconds))

    def _stats(
        self, service: str | None, operation: str | None, window_seconds: float
    ) -> Generator[None, None, Stats]:
        since_ns = int((self._clock() - window_seconds) * 1e9)
        durations: list[float] = []
        errors = 0
        budget = STEP
        for trace_id in self._candidate_ids(service, operation):
            trace = self._traces.get(trace_id)
            if trace is None:
                continue
            spans = tuple(trace.spans)
            budget -= len(spans)
            if budget <= 0:
                yield
                budget = STEP
            for span in spans:
                if service is not None and _service(span) != service:
                    continue
                if operation is not None and span.name != operation:
                    continue
                if span.end_ns is None or span.end_ns < since_ns:
                    continue
                durations.append((span.end_ns - span.start_ns) / 1e6)
                if span.is_error:
                    errors += 1
        if not durations:
            return Stats(0, errors, 0.0, 0.0, 0.0, 0.0, 0.0, window_seconds)
        count = len(durations)
        # nearest ranks, as percentile() takes them; one sort of 100,000 floats is ~10 ms
        ranks = [max(1, math.ceil(fraction * count)) for fraction in (0.5, 0.9, 0.95, 0.99)]
        p50, p90, p95, p99, top = yield from stepwise.order_statistics(durations, [*ranks, count])
        return Stats(count, errors, p50, p90, p95, p99, top, window_seconds)
