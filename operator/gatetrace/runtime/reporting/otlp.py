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

__all__ = ["CONTENT_TYPE", "OtlpHttpExporter", "PartialSuccess", "decode_partial_success"]

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


class OtlpHttpExporter:
    """Sends batches to an OTLP/HTTP collector (``http://host:4318/v1/traces``)."""

    name = "otlpHttp"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = True,
        max_value_length: int = 32768,
    ) -> None:
        self.endpoint = endpoint
        self.encoder = otlp_encoding.OtlpEncoder(max_value_length=max_value_length)
        self.transport = http.HttpTransport(
            endpoint, content_type=CONTENT_TYPE, headers=headers, gzip=gzip
        )
        self._retry: export.RetryCache[bytes] = export.RetryCache()

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        truncated: dict[str, int] = {}
        body = self._retry.get(spans)  # a retry reuses the bytes (truncations counted once)
        if body is None:
            try:
                body, truncated = await export.encode_in_slices(self.encoder.begin(), spans)
            except Exception:  # a bug in the encoder must not loop through retries
                _log.exception("otlpHttp: encoding failed")
                return export.ExportOutcome(export.ExportResult.FAILURE, "encode_error")
            self._retry.put(spans, body)
        response = await self.transport.post(body, timeout)
        outcome = response.outcome
        self._retry.settle(outcome)
        if outcome.result is not export.ExportResult.SUCCESS:
            return dataclasses.replace(outcome, truncated=truncated)
        dropped: dict[str, int] = {}
        if response.body:
            try:
                partial = decode_partial_success(response.body)
            except pb.WireError:
                partial = PartialSuccess()
            if partial.rejected_spans:
                dropped["rejected"] = min(partial.rejected_spans, len(spans))
                _log.warning(
                    "otlpHttp: %s rejected %d spans: %s",
                    self.endpoint,
                    partial.rejected_spans,
                    partial.error_message,
                )
        return export.ExportOutcome.success(dropped, truncated)

    async def close(self) -> None:
        self._retry.clear()
        await self.transport.close()
