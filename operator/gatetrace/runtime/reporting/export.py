"""The exporter interface the batching engine drives.

Reporters are an encoder plus a transport wrapped in an :class:`Exporter`;
the one batching engine (:mod:`.engine`) owns queueing, batching, timeouts,
retries and drop accounting for all of them. Exporters return an
:class:`ExportOutcome` instead of raising (as OpenTelemetry's exporters do).
"""

import asyncio
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar, runtime_checkable

from gatetrace.runtime import span as _span

__all__ = [
    "ENCODE_SLICE",
    "BatchEncoding",
    "ExportOutcome",
    "ExportResult",
    "Exporter",
    "ReportsQueueDrops",
    "RetryCache",
    "encode_in_slices",
    "map_in_slices",
]

ENCODE_SLICE: Final = 16
"""Spans encoded between two turns of the event loop (~0.15 ms of Python work)."""


class ExportResult(enum.Enum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    """Connection errors, timeouts, 429, 502/503/504: the engine retries with backoff."""
    FAILURE = "failure"
    """Anything else (e.g. 400): dropped and counted, never retried."""


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    result: ExportResult
    reason: str = ""
    """Short machine-friendly cause: ``connection_refused``, ``http_503``, ``timeout``..."""
    retry_after: float | None = None
    """Seconds the backend asked us to wait (HTTP Retry-After), if any."""
    dropped: Mapping[str, int] = field(default_factory=dict)
    """Spans of this batch the exporter dropped itself, by reason (``too_large``,
    ``rejected`` for OTLP partial success...); not retried."""
    truncated: Mapping[str, int] = field(default_factory=dict)
    """Values the encoder had to cut or replace to make the batch encodable, by what
    (``value_length``, ``invalid_utf8``, ``value_type``...); counted, never fatal."""

    @classmethod
    def success(
        cls,
        dropped: Mapping[str, int] | None = None,
        truncated: Mapping[str, int] | None = None,
    ) -> "ExportOutcome":
        return cls(
            ExportResult.SUCCESS, dropped=dict(dropped or {}), truncated=dict(truncated or {})
        )


class Exporter(Protocol):
    name: str
    """The reporter type (``zipkin``, ``otlpHttp``, ``jaegerAgent``...) used in metric labels."""

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> ExportOutcome:
        """Send one batch within ``timeout`` seconds. Never raises."""
        ...

    async def close(self) -> None:
        """Release sockets/sessions. Called once, after the last export."""
        ...


class BatchEncoding(Protocol):
    """A request body being encoded a slice of spans at a time."""

    def add(self, spans: Sequence[_span.Span]) -> None: ...

    def finish(self) -> tuple[bytes, dict[str, int]]:
        """The body, and what had to be cut, by what."""
        ...


async def encode_in_slices(
    encoding: BatchEncoding, spans: Sequence[_span.Span], slice_size: int = ENCODE_SLICE
) -> tuple[bytes, dict[str, int]]:
    """Encode ``spans`` into ``encoding`` ``slice_size`` at a time, letting the event loop
    run between slices: encoding is pure Python at ~10 us a span, so a 512-span batch in
    one go would hold every request the gateway is serving for ~5 ms."""
    for start in range(0, len(spans), slice_size):
        if start:
            await asyncio.sleep(0)
        encoding.add(spans[start : start + slice_size])
    return encoding.finish()


_In = TypeVar("_In")
_Out = TypeVar("_Out")


async def map_in_slices(
    function: Callable[[_In], _Out], items: Sequence[_In], slice_size: int = ENCODE_SLICE
) -> list[_Out]:
    """``[function(item) for item in items]``, with a turn of the event loop after every
    ``slice_size`` items (as :func:`encode_in_slices`)."""
    out: list[_Out] = []
    for start in range(0, len(items), slice_size):
        if start:
            await asyncio.sleep(0)
        out += [function(item) for item in items[start : start + slice_size]]
    return out


_Encoded = TypeVar("_Encoded")


@runtime_checkable
class ReportsQueueDrops(Protocol):
    """An exporter that tells its backend how many spans the engine dropped on a full
    queue (Jaeger's ``ClientStats``): the engine hands it its counter when it is built."""

    def watch_queue_drops(self, count: Callable[[], float]) -> None:
        """Read ``count()`` (cumulative queue-full drops) whenever a batch is sent;
        keeps a counter given at construction."""
        ...


class RetryCache(Generic[_Encoded]):
    """The encoded form of the batch in flight, so that a retry is not encoded again.

    The engine retries a batch by passing the same sequence object; holding it
    here keeps its identity from being reused by another batch.
    """

    __slots__ = ("_encoded", "_spans")

    def __init__(self) -> None:
        self._spans: Sequence[_span.Span] | None = None
        self._encoded: _Encoded | None = None

    def get(self, spans: Sequence[_span.Span]) -> _Encoded | None:
        """What :meth:`put` stored for this very batch, else None."""
        return self._encoded if spans is self._spans else None

    def put(self, spans: Sequence[_span.Span], encoded: _Encoded) -> None:
        self._spans, self._encoded = spans, encoded

    def settle(self, outcome: ExportOutcome) -> None:
        """Forget the batch unless ``outcome`` means the engine will retry it."""
        if outcome.result is not ExportResult.RETRYABLE:
            self.clear()

    def clear(self) -> None:
        self._spans = self._encoded = None
