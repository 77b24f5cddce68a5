"""The retro buffer: a service's spans of pending traces, until kept or expired.

A :class:`~gatetrace.runtime.tracer.SpanProcessor` for the spans of traces the edge marked
pending (:mod:`.pending`). Bounded by bytes (the estimate of
:func:`gatetrace.runtime.span_size.retained_bytes`) and by age: the oldest trace is evicted
first, a whole trace at a time, and every evicted span is counted by reason (``bytes``,
``age``). :meth:`RetroBuffer.keep` takes a trace out for export; a trace kept before all
its spans arrived (the edge's keep can overtake a hop's last span) stays marked kept for
the buffer's age bound, and its late spans go straight to the exporter.

A span comes with the record of its request attributes (:mod:`.semconv`), written into
its tags only if the trace is kept: most buffered traces expire unread, so their spans
never pay for attributes nobody sees. The kit hands over most spans as compact records
(:meth:`RetroBuffer.add_record`, :class:`.kit.FinishedSpan`): the span is built only on
keep. Everything runs on the event loop; :meth:`add` is an
append, a size estimate and an eviction check.
"""

import collections
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime import span_size as _span_size
from gatetrace.runtime import spancontext as _sc

__all__ = ["RetroBuffer"]

_BARE_SPAN_BYTES = _span_size.MIN_SPAN_BYTES + 64
"""A span without tags, logs or references (its status text, if any, included)."""

Clock = Callable[[], float]
Export = Callable[[_span.Span, str], None]


class Attributes(Protocol):
    """A span's deferred request attributes (:class:`.semconv.ServerRequest`...)."""

    def write(self, tags: dict[str, _span.TagValue], limit: int) -> None: ...

    def retained_bytes(self) -> int: ...


class Compact(Protocol):
    """A finished span held as its fields, its deferred attributes included
    (:class:`.kit.FinishedSpan`): built, attributes written, on keep."""

    @property
    def context(self) -> _sc.SpanContext: ...

    def build(self) -> _span.Span: ...

    def retained_bytes(self) -> int: ...


_Entry = tuple[_span.Span, Attributes | None, int]
"""(span, its deferred attributes, their value length limit); a :class:`Compact` record
is held as itself."""


@dataclass(slots=True)
class _Trace:
    born: float
    spans: "list[_Entry | Compact]" = field(default_factory=list)
    bytes: int = 0
    kept: str = ""
    """The keep reason once kept (late spans are exported at once)."""
    state: object = None
    """The tracestate last counted for this trace's spans."""
    baggage: object = None
    """The baggage last counted for this trace's spans."""


class RetroBuffer:
    """Buffers finished spans by trace id; see the module docstring."""

    def __init__(
        self,
        *,
        max_bytes: int,
        max_age_seconds: float,
        registry: _metrics.Registry | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_bytes < 1 or max_age_seconds <= 0:
            raise ValueError(
                f"retro buffer bounds must be positive (maxBufferBytes={max_bytes}, "
                f"maxAgeSeconds={max_age_seconds})"
            )
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.bytes = 0
        self._traces: collections.OrderedDict[int, _Trace] = collections.OrderedDict()
        self._oldest_born = math.inf
        """When the first trace in :attr:`_traces` was born (the age bound's check)."""
        self._clock = clock
        self.export: Export | None = None
        """Where kept spans go (set by the kit: the running config's reporters)."""
        registry = registry if registry is not None else _metrics.Registry()
        self._buffered = registry.counter(
            "gatetrace_retro_spans_buffered", "Spans of pending traces buffered", []
        ).tally()
        evicted = registry.counter(
            "gatetrace_retro_spans_evicted",
            "Buffered spans evicted before a keep, by reason (bytes, age)",
            ["reason"],
        )
        self._evicted = {reason: evicted.tally((reason,)) for reason in ("bytes", "age")}
        self._kept = registry.counter(
            "gatetrace_retro_spans_kept", "Buffered spans exported because a keep came", []
        )
        registry.gauge(
            "gatetrace_retro_buffer_bytes", "Estimated bytes of spans in the retro buffer"
        ).set_function(lambda: float(self.bytes))
        registry.gauge(
            "gatetrace_retro_buffer_traces", "Traces held by the retro buffer"
        ).set_function(lambda: float(len(self._traces)))

    def __len__(self) -> int:
        return sum(len(t.spans) for t in self._traces.values())

    def configure(self, *, max_bytes: int, max_age_seconds: float) -> None:
        """New bounds (a config change); applied at once."""
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._evict(self._clock())

    def _entry(self, trace_id: int, now: float) -> _Trace:
        entry = self._traces.get(trace_id)
        if entry is None:
            if not self._traces:
                self._oldest_born = now
            entry = self._traces[trace_id] = _Trace(now)
        return entry

    def on_end(self, span: _span.Span) -> None:
        """A finished span of a pending trace (a span processor, without deferred tags)."""
        self.add(span, None, 0)

    def add(self, span: _span.Span, attributes: Attributes | None, limit: int) -> None:
        """A finished span of a pending trace and its deferred ``attributes``."""
        if span.tags or span.logs or span.references:
            size = _span_size.retained_bytes(span, with_context=False)
        else:
            size = _BARE_SPAN_BYTES + sys.getsizeof(span.name)
        if attributes is not None:
            size += attributes.retained_bytes()
        self._add((span, attributes, limit), span.context, size)

    def add_record(self, record: Compact) -> None:
        """A finished span of a pending trace as its compact record (attributes in it)."""
        self._add(record, record.context, record.retained_bytes())

    def _add(self, item: "_Entry | Compact", context: _sc.SpanContext, size: int) -> None:
        now = self._clock()
        traces = self._traces
        entry = traces.get(context.trace_id)
        if entry is None:
            if not traces:
                self._oldest_born = now
            entry = traces[context.trace_id] = _Trace(now)
        if entry.kept:
            self._send(item, entry.kept)
            return
        if entry.state is not context.trace_state or entry.baggage is not context.baggage:
            # what the client sent, shared by the trace's spans: counted once per change
            entry.state, entry.baggage = context.trace_state, context.baggage
            size += _span_size.context_bytes(context)
        entry.spans.append(item)
        entry.bytes += size
        self.bytes += size
        self._buffered.n += 1
        if self.bytes > self.max_bytes or self._oldest_born <= now - self.max_age_seconds:
            self._evict(now)

    def keep(self, trace_id: int, reason: str) -> int:
        """Export the trace's buffered spans (and any that arrive later, while the trace
        is remembered); the number exported now. A repeated keep exports nothing twice."""
        now = self._clock()
        self._evict(now)
        entry = self._entry(trace_id, now)
        if not entry.kept:
            entry.kept = reason or "kept"
        spans, entry.spans = entry.spans, []
        self.bytes -= entry.bytes
        entry.bytes = 0
        for item in spans:
            self._send(item, entry.kept)
        return len(spans)

    def _send(self, item: "_Entry | Compact", reason: str) -> None:
        if type(item) is tuple:
            span, attributes, limit = item
            if attributes is not None:
                attributes.write(span.tags, limit)
        else:
            span = item.build()  # type: ignore[union-attr]
        self._kept.inc()
        span.tags["sampling.priority.reason"] = reason
        span.tags["gatetrace.retro"] = True  # kept from this buffer, after the fact
        export = self.export
        if export is not None:
            export(span, reason)

    def _evict(self, now: float) -> None:
        traces = self._traces
        oldest = now - self.max_age_seconds
        while traces:
            trace_id, entry = next(iter(traces.items()))
            if entry.born <= oldest:
                reason = "age"
            elif self.bytes > self.max_bytes and entry.spans:
                reason = "bytes"
            elif self.bytes > self.max_bytes and len(traces) > 1:
                traces.move_to_end(trace_id)  # a kept/empty entry holds no bytes: skip it
                continue
            else:
                self._oldest_born = entry.born
                return
            del traces[trace_id]
            self.bytes -= entry.bytes
            if entry.spans:
                self._evicted[reason].n += len(entry.spans)
        self._oldest_born = math.inf
