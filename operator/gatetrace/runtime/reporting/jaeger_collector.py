"""The ``jaegerCollector`` reporter: a thrift-binary ``Batch`` POSTed to ``/api/traces``.

The body is one Jaeger ``Batch`` (thriftpy2 objects from
:mod:`.jaeger_thrift`, serialised by thriftpy2's Cython binary protocol)
sent with ``Content-Type: application/x-thrift``, as the Jaeger collector's
HTTP endpoint expects. Spans of different resources go out as one Batch
(one POST) per resource. The shared :class:`~.http.HttpTransport` decides
what is retryable: connection errors, timeouts, 408/429/502/503/504 (with
``Retry-After``); anything else, e.g. 400, is a failure. A retried batch
reuses its encoded bodies.
"""

import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import export, http
from gatetrace.runtime.reporting import jaeger_thrift as _jt
from gatetrace.runtime.reporting import tls as _tls

__all__ = ["CONTENT_TYPE", "DEFAULT_PATH", "JaegerCollectorExporter", "collector_url"]

CONTENT_TYPE = "application/x-thrift"
DEFAULT_PATH = "/api/traces"
_log = logging.getLogger(__name__)


def collector_url(endpoint: str) -> str:
    """``endpoint`` with the default ``/api/traces`` path when it has none."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.path in ("", "/"):
        parts = parts._replace(path=DEFAULT_PATH)
    return urllib.parse.urlunsplit(parts)


class JaegerCollectorExporter:
    """POSTs batches to a Jaeger collector (``http://host:14268/api/traces``)."""

    name = "jaegerCollector"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        tls: _tls.TlsSettings | None = None,
        max_string_bytes: int = _jt.DEFAULT_MAX_STRING_BYTES,
        full_queue_dropped: Callable[[], float] | None = None,
    ) -> None:
        self.endpoint = collector_url(endpoint)
        self.transport = http.HttpTransport(
            self.endpoint, content_type=CONTENT_TYPE, headers=headers, gzip=gzip, tls=tls
        )
        self.sanitizer = _jt.ValueSanitizer(max_string_bytes)
        self.full_queue_dropped = full_queue_dropped
        """Cumulative spans the engine dropped on a full queue (ClientStats)."""
        self.seq_no = 0
        """Sequence number of the last Batch sent (the first one is 1)."""
        self._retry: export.RetryCache[list[tuple[int, bytes]]] = export.RetryCache()

    def watch_queue_drops(self, count: Callable[[], float]) -> None:
        """The engine's queue-full counter (``export.ReportsQueueDrops``), unless one was
        given at construction."""
        if self.full_queue_dropped is None:
            self.full_queue_dropped = count

    async def encode(self, spans: Sequence[_span.Span]) -> list[tuple[int, bytes]]:
        """One (span count, body) per resource among ``spans``; spans are converted a slice
        at a time with the event loop running in between (see :func:`export.map_in_slices`)."""
        groups: dict[_span.Resource, list[_span.Span]] = {}
        for span in spans:
            groups.setdefault(span.resource, []).append(span)
        bodies = []
        clean = self.sanitizer

        def convert(span: _span.Span) -> Any:
            return _jt.to_span(span, clean)

        for resource, group in groups.items():
            converted = await export.map_in_slices(convert, group)
            self.seq_no += 1
            batch = _jt.batch_of(
                _jt.to_process(resource, clean),
                converted,
                seq_no=self.seq_no,
                stats=_jt.client_stats(self.full_queue_dropped),
            )
            bodies.append((len(group), _jt.serialize_binary(batch)))
        return bodies

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        """POST one Batch per resource within ``timeout`` seconds. Never raises."""
        if not spans:
            return export.ExportOutcome.success()
        truncated: dict[str, int] = {}
        bodies = self._retry.get(spans)  # a retry reuses the encoded bodies
        if bodies is None:
            try:
                bodies = await self.encode(spans)
            except Exception:  # a bug in the encoder must not loop through retries
                _log.exception("jaegerCollector: encoding failed")
                self.sanitizer.take()
                return export.ExportOutcome(export.ExportResult.FAILURE, "encode_error")
            truncated = self.sanitizer.take()
            self._retry.put(spans, bodies)
        sent = failed = 0
        first_failure: export.ExportOutcome | None = None
        for count, body in bodies:
            response = await self.transport.post(body, timeout)
            outcome = response.outcome
            if outcome.result is export.ExportResult.SUCCESS:
                sent += count
                continue
            first_failure = first_failure or outcome
            failed += count
        if first_failure is None:
            outcome = export.ExportOutcome.success(truncated=truncated)
        elif sent == 0:
            outcome = export.ExportOutcome(
                first_failure.result,
                first_failure.reason,
                retry_after=first_failure.retry_after,
                truncated=truncated,
            )
        else:  # some resources' batches went through: retrying would duplicate them
            outcome = export.ExportOutcome.success({"export_failed": failed}, truncated)
        self._retry.settle(outcome)
        return outcome

    async def close(self) -> None:
        self._retry.clear()
        await self.transport.close()
