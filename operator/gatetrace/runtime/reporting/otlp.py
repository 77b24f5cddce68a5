"""The ``otlpHttp`` reporter: OTLP/HTTP protobuf, ``POST /v1/traces``.

The body is an ``ExportTraceServiceRequest`` written by
:class:`~.otlp_encoding.OtlpEncoder`; the transport is the shared
:class:`~.http.HttpTransport` (gzip, custom headers such as
``Authorization``, retryable statuses). A 2xx answer may carry a
``partial_success`` whose ``rejected_spans`` the collector will never
store: those are counted as dropped (``rejected``) and not retried. A 400
means the collector cannot parse or accept the batch: ``FAILURE``, not
retried.
"""

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import export, http, otlp_encoding
from gatetrace.runtime.reporting import protobuf_wire as pb
from gatetrace.runtime.reporting import tls as _tls

__all__ = [
    "CONTENT_TYPE",
    "OtlpBatches",
    "OtlpHttpExporter",
    "PartialSuccess",
    "decode_partial_success",
]

CONTENT_TYPE = "application/x-protobuf"
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class PartialSuccess:
    """``ExportTraceServiceResponse.partial_success``: spans the backend refused."""

    rejected_spans: int = 0
    error_message: str = ""


def decode_partial_success(body: bytes) -> PartialSuccess:
    """Read ``partial_success`` from an ``ExportTraceServiceResponse`` (protobuf).

    Raises :class:`~.protobuf_wire.WireError` when ``body`` is not a protobuf message.
    """
    rejected, message = 0, ""
    for number, wire_type, value in pb.iter_fields(body):
        if number != 1 or wire_type != pb.LEN or not isinstance(value, bytes):
            continue  # unknown fields are skipped, as protobuf decoders do
        for inner_number, inner_type, inner in pb.iter_fields(value):
            if inner_number == 1 and inner_type == pb.VARINT and isinstance(inner, int):
                rejected = inner if inner < (1 << 63) else 0  # int64: negative means nonsense
            elif inner_number == 2 and inner_type == pb.LEN and isinstance(inner, bytes):
                message = inner.decode("utf-8", "replace")
    return PartialSuccess(rejected, message)


class OtlpBatches:
    """What the OTLP exporters (HTTP and gRPC) share: encoding a batch once for all its
    attempts, and reading the collector's answer into an outcome."""

    __slots__ = ("_retry", "encoder", "name", "where")

    def __init__(self, name: str, where: str, *, max_value_length: int) -> None:
        self.name = name
        self.where = where
        """The endpoint, for log lines."""
        self.encoder = otlp_encoding.OtlpEncoder(max_value_length=max_value_length)
        self._retry: export.RetryCache[bytes] = export.RetryCache()

    async def encode(
        self, spans: Sequence[_span.Span]
    ) -> tuple[bytes, dict[str, int]] | export.ExportOutcome:
        """The request body and its truncations (none on a retry: counted once), or the
        outcome of an encoder bug (a failure: it must not loop through retries)."""
        body = self._retry.get(spans)
        if body is not None:
            return body, {}
        try:
            body, truncated = await export.encode_in_slices(self.encoder.begin(), spans)
        except Exception:
            _log.exception("%s: encoding failed", self.name)
            return export.ExportOutcome(export.ExportResult.FAILURE, "encode_error")
        self._retry.put(spans, body)
        return body, truncated

    def settle(
        self,
        outcome: export.ExportOutcome,
        response: bytes,
        spans: Sequence[_span.Span],
        truncated: dict[str, int],
    ) -> export.ExportOutcome:
        """The final outcome of one attempt: a success's ``partial_success`` counted as
        ``rejected`` drops; the encoded batch kept only for a retry."""
        self._retry.settle(outcome)
        if outcome.result is not export.ExportResult.SUCCESS:
            return dataclasses.replace(outcome, truncated=truncated)
        dropped: dict[str, int] = {}
        if response:
            try:
                partial = decode_partial_success(response)
            except pb.WireError:
                partial = PartialSuccess()
            if partial.rejected_spans:
                dropped["rejected"] = min(partial.rejected_spans, len(spans))
                _log.warning(
                    "%s: %s rejected %d spans: %s",
                    self.name,
                    self.where,
                    partial.rejected_spans,
                    partial.error_message,
                )
        return export.ExportOutcome.success(dropped, truncated)

    def clear(self) -> None:
        self._retry.clear()


class OtlpHttpExporter:
    """Sends batches to an OTLP/HTTP collector (``http://host:4318/v1/traces``)."""

    name = "otlpHttp"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = True,
        tls: _tls.TlsSettings | None = None,
        max_value_length: int = 32768,
    ) -> None:
        self.endpoint = endpoint
        self.transport = http.HttpTransport(
            endpoint, content_type=CONTENT_TYPE, headers=headers, gzip=gzip, tls=tls
        )
        self.batches = OtlpBatches(self.name, endpoint, max_value_length=max_value_length)

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        encoded = await self.batches.encode(spans)
        if isinstance(encoded, export.ExportOutcome):
            return encoded
        body, truncated = encoded
        response = await self.transport.post(body, timeout)
        return self.batches.settle(response.outcome, response.body, spans, truncated)

    async def close(self) -> None:
        self.batches.clear()
        await self.transport.close()
