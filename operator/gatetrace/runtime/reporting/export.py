"""The exporter interface the batching engine drives.

Reporters are an encoder plus a transport wrapped in an :class:`Exporter`;
the one batching engine (:mod:`.engine`) owns queueing, batching, timeouts,
retries and drop accounting for all of them. Exporters return an
:class:`ExportOutcome` instead of raising (as OpenTelemetry's exporters do).
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from gatetrace.runtime import span as _span

__all__ = ["ExportOutcome", "ExportResult", "Exporter", "RetryCache"]


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


_Encoded = TypeVar("_Encoded")


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
