"""The ``memory`` reporter: hands finished spans to an in-process store.

The gateway's query API reads spans from its own indexed store
(``gatetrace.gateway.store``); this module only defines what such a store
must offer, :class:`SpanSink`, and the :class:`MemoryExporter` that feeds it
from the batching engine. Wiring, as the policy layer does it::

    sink = gateway_store                       # anything with add(spans)
    processor = memory_processor(sink, registry)
    processor.start()                          # on the gateway's loop

The engine's bounded queue is the buffer between the request path and the
store: ``on_end`` costs an append, the store's indexing runs in the
engine's task, at most ``max_batch_size`` spans at a time. Spans reach the
store within ``flush_interval_ms`` (100 ms by default here) or at once on
``force_flush``. :class:`RingBufferSink` is a minimal bounded sink for tests
and tools.
"""

import collections
from collections.abc import Mapping, Sequence
from typing import Protocol

from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import engine, export

__all__ = [
    "MEMORY_BATCH_SETTINGS",
    "MemoryExporter",
    "RingBufferSink",
    "SpanSink",
    "memory_processor",
]

MEMORY_BATCH_SETTINGS = engine.BatchSettings(
    max_queue_size=8192, max_batch_size=512, flush_interval_ms=100, export_timeout_ms=1000
)
"""Defaults for the memory reporter: short interval, so the query API sees spans quickly."""


class SpanSink(Protocol):
    """A store of finished spans. ``add`` runs on the event loop: keep it fast and bounded."""

    def add(self, spans: Sequence[_span.Span]) -> Mapping[str, int] | None:
        """Take ownership of ``spans`` (finished, immutable). May evict old spans. May
        return how many of them it refused, by reason (counted as the reporter's drops)."""
        ...


class MemoryExporter:
    """An :class:`~.export.Exporter` that calls ``sink.add(batch)``; a raising sink is a FAILURE."""

    name = "memory"

    def __init__(self, sink: SpanSink) -> None:
        self.sink = sink

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        try:
            refused = self.sink.add(spans)
        except Exception as error:
            return export.ExportOutcome(export.ExportResult.FAILURE, type(error).__name__)
        return export.ExportOutcome.success(dropped=refused)

    async def close(self) -> None:
        return None


def memory_processor(
    sink: SpanSink,
    registry: _metrics.Registry | None = None,
    settings: engine.BatchSettings | None = None,
    *,
    instance: str = "0",
) -> engine.BatchingProcessor:
    """A batching processor feeding ``sink`` (not started: call ``start()`` on the loop)."""
    return engine.BatchingProcessor(
        MemoryExporter(sink),
        settings if settings is not None else MEMORY_BATCH_SETTINGS,
        registry,
        instance=instance,
    )


class RingBufferSink:
    """Keeps the newest ``max_spans`` spans; older ones are evicted and counted."""

    __slots__ = ("_spans", "evicted", "max_spans")

    def __init__(self, max_spans: int = 10_000) -> None:
        if max_spans <= 0:
            raise ValueError(f"max_spans: must be > 0, got {max_spans}")
        self.max_spans = max_spans
        self._spans: collections.deque[_span.Span] = collections.deque(maxlen=max_spans)
        self.evicted = 0

    def add(self, spans: Sequence[_span.Span]) -> None:
        overflow = len(self._spans) + len(spans) - self.max_spans
        if overflow > 0:
            self.evicted += overflow
        self._spans.extend(spans)

    def spans(self) -> list[_span.Span]:
        """A snapshot, oldest first."""
        return list(self._spans)

    def __len__(self) -> int:
        return len(self._spans)
