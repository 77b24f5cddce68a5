"""The ``otlpGrpc`` reporter: OTLP over gRPC, ``TraceService/Export`` (port 4317).

The request is the same ``ExportTraceServiceRequest`` the OTLP/HTTP reporter
POSTs (:class:`~.otlp.OtlpBatches` encodes it and reads the answer's
``partial_success``), sent as raw bytes through a generic unary call, so no
generated code and no ``protobuf`` package are needed. The transport is
``grpcio``, an optional dependency (``pip install 'gatetrace[grpc]'``):
without it, building the reporter is a configuration error that names it.

``endpoint`` is ``http://host:port`` (plaintext) or ``https://host:port``
(TLS: :class:`~.tls.TlsSettings` for a private CA, a client certificate, a
server name), as the OpenTelemetry SDKs read ``OTEL_EXPORTER_OTLP_ENDPOINT``
for gRPC; it has no path. Status codes map as the OTLP specification says:
``CANCELLED``, ``DEADLINE_EXCEEDED``, ``ABORTED``, ``OUT_OF_RANGE``,
``UNAVAILABLE`` and ``DATA_LOSS`` are retryable, ``RESOURCE_EXHAUSTED`` only
when the server sent a ``RetryInfo`` (whose delay becomes ``retry_after``),
anything else is a failure; a TLS failure is ``tls_certificate`` or
``tls_handshake``, a failure as over HTTP. Every call carries the engine's
deadline, so a dead collector costs an attempt no more than an HTTP one.
"""

import importlib
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import export, otlp
from gatetrace.runtime.reporting import protobuf_wire as pb
from gatetrace.runtime.reporting import tls as _tls

__all__ = [
    "DEFAULT_PORT",
    "EXPORT_METHOD",
    "EXTRA_MISSING",
    "OtlpGrpcExporter",
    "grpc_target",
    "load_grpc",
    "retry_delay",
]

DEFAULT_PORT = 4317
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
EXTRA_MISSING = (
    "otlpGrpc needs the optional grpc support, which is not installed: "
    "pip install 'gatetrace[grpc]' (the grpcio package)"
)
_RETRYABLE = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)
_REASONS = {"DEADLINE_EXCEEDED": "timeout"}
_STATUS_DETAILS = "grpc-status-details-bin"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_MAX_RETRY_DELAY = 3600.0
_log = logging.getLogger(__name__)


def load_grpc() -> ModuleType:
    """The ``grpc`` package with its asyncio API; ValueError saying how to install it."""
    try:
        grpc = importlib.import_module("grpc")
        importlib.import_module("grpc.aio")
    except ImportError as e:
        raise ValueError(EXTRA_MISSING) from e
    return grpc


def grpc_target(endpoint: str) -> tuple[str, bool]:
    """``(host:port, secure)`` for an ``http(s)://host[:port]`` endpoint (port 4317 when
    absent); ValueError naming the problem for anything else."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"endpoint: expected http://host:port or https://host:port, got {parts.scheme}://..."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            "endpoint: an otlpGrpc endpoint has no path (the call is "
            f"{EXPORT_METHOD}); give http(s)://host:port"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or DEFAULT_PORT}", parts.scheme == "https"


def _duration_seconds(message: bytes) -> float:
    seconds = nanos = 0
    for number, wire_type, value in pb.iter_fields(message):
        if wire_type == pb.VARINT and isinstance(value, int):
            if number == 1:
                seconds = value if value < (1 << 63) else 0
            elif number == 2:
                nanos = value if value < (1 << 31) else 0
    return seconds + nanos / 1e9


def retry_delay(status_details: bytes) -> float | None:
    """The ``RetryInfo.retry_delay`` in a ``google.rpc.Status`` (the binary trailer
    ``grpc-status-details-bin``) in seconds, or None when there is none."""
    try:
        for number, wire_type, detail in pb.iter_fields(status_details):
            if number != 3 or wire_type != pb.LEN or not isinstance(detail, bytes):
                continue
            fields = {n: v for n, t, v in pb.iter_fields(detail) if t == pb.LEN}
            if fields.get(1) != _RETRY_INFO.encode():
                continue
            info = fields.get(2, b"")
            for inner_number, inner_type, delay in pb.iter_fields(
                info if isinstance(info, bytes) else b""
            ):
                if inner_number == 1 and inner_type == pb.LEN and isinstance(delay, bytes):
                    return min(max(_duration_seconds(delay), 0.0), _MAX_RETRY_DELAY)
            return 0.0
    except pb.WireError:
        return None
    return None


def _tls_reason(details: str) -> str | None:
    """``tls_certificate``/``tls_handshake`` when gRPC's ``details`` of an UNAVAILABLE say
    the TLS handshake failed (e.g. ``Tls handshake failed (TSI_PROTOCOL_FAILURE):
    SSL_ERROR_SSL: ...CERTIFICATE_VERIFY_FAILED``), else None. Only gRPC's own words
    count: a host name with "tls" in it is not a TLS failure."""
    lowered = details.lower()
    if "handshake failed" not in lowered and "ssl_error" not in lowered:
        return None
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        return "tls_certificate"
    return "tls_handshake"


def _outcome(error: Any, target: str, logged: set[str]) -> export.ExportOutcome:
    """The outcome of a failed call (``error``: a ``grpc.aio.AioRpcError``); TLS failures
    are logged once per distinct message in ``logged``."""
    code = error.code().name
    details = str(error.details() or "")
    if code == "UNAVAILABLE":
        tls_reason = _tls_reason(details)
        if tls_reason is not None:
            if details not in logged and len(logged) < 16:
                logged.add(details)
                _log.warning("otlpGrpc %s: TLS failed: %s", target, details)
            return export.ExportOutcome(export.ExportResult.FAILURE, tls_reason)
    reason = _REASONS.get(code, f"grpc_{code.lower()}")
    if code == "UNAVAILABLE" and "connection refused" in details.lower():
        reason = "connection_refused"  # the HTTP reporters' label for the same thing
    delay = retry_delay(_trailer(error, _STATUS_DETAILS))
    if code in _RETRYABLE or (code == "RESOURCE_EXHAUSTED" and delay is not None):
        return export.ExportOutcome(export.ExportResult.RETRYABLE, reason, retry_after=delay)
    return export.ExportOutcome(export.ExportResult.FAILURE, reason)


def _trailer(error: Any, key: str) -> bytes:
    for name, value in error.trailing_metadata() or ():
        if name == key and isinstance(value, bytes):
            return value
    return b""


def _check_metadata(name: str, value: str) -> None:
    """ValueError naming the header when gRPC could not send it as ASCII metadata."""
    if (
        name != name.lower()
        or name.startswith(("grpc-", ":"))
        or name.endswith("-bin")
        or not name.isascii()
    ):
        raise ValueError(
            f"headers: {name!r} is not usable as gRPC metadata (lower case ASCII, "
            "not grpc-*, *-bin nor a pseudo-header)"
        )
    if not all(" " <= c <= "~" for c in value):
        raise ValueError(f"headers: the value of {name!r} is not printable ASCII (gRPC metadata)")


def _credentials(grpc: ModuleType, settings: _tls.TlsSettings) -> Any:
    if settings.insecure_skip_verify:
        raise ValueError(
            "tls.insecureSkipVerify: not supported by the gRPC transport; "
            "give the collector's CA in tls.ca, tls.caFile or tls.secretName"
        )
    _tls.client_context(settings)  # the same checks (files, PEM, key matching cert) as HTTP

    def pem(text: str | None, path: str | None, field: str) -> bytes | None:
        if text is None and path is not None:
            text = _tls.load_pem_file(path, field)
        return text.encode("ascii", "replace") if text is not None else None

    return grpc.ssl_channel_credentials(
        root_certificates=pem(settings.ca_pem, settings.ca_file, "caFile"),
        private_key=pem(settings.key_pem, settings.key_file, "keyFile"),
        certificate_chain=pem(settings.cert_pem, settings.cert_file, "certFile"),
    )


class OtlpGrpcExporter:
    """Sends batches to an OTLP/gRPC collector (``http://host:4317``)."""

    name = "otlpGrpc"

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = True,
        tls: _tls.TlsSettings | None = None,
        max_value_length: int = 32768,
    ) -> None:
        self._grpc = load_grpc()
        self.endpoint = endpoint
        self.target, secure = grpc_target(endpoint)
        if tls is not None and not secure:
            raise ValueError("tls: set for an http:// endpoint; use https://")
        for name, value in (headers or {}).items():
            _check_metadata(name, value)
        self.metadata = tuple((name, value) for name, value in (headers or {}).items())
        grpc = self._grpc
        self.credentials: _tls.Reloading[Any] | None = None
        if secure:
            self.credentials = _tls.Reloading(
                tls or _tls.TlsSettings(), lambda settings: _credentials(grpc, settings)
            )
        self.options: tuple[tuple[str, Any], ...] = ()
        if tls is not None and tls.server_name:
            self.options = (("grpc.ssl_target_name_override", tls.server_name),)
        self.compression = self._grpc.Compression.Gzip if gzip else None
        self.batches = otlp.OtlpBatches(self.name, endpoint, max_value_length=max_value_length)
        self._channel: Any = None
        self._call: Any = None
        self._logged: set[str] = set()

    def _export_call(self) -> Any:
        if self._channel is None:  # created on the loop that exports (grpc.aio binds to it)
            aio = self._grpc.aio
            if self.credentials is None:
                self._channel = aio.insecure_channel(self.target, options=self.options)
            else:
                self._channel = aio.secure_channel(
                    self.target, self.credentials.value, options=self.options
                )
            self._call = self._channel.unary_unary(EXPORT_METHOD)
        return self._call

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        """Send one batch within ``timeout`` seconds. Never raises."""
        encoded = await self.batches.encode(spans)
        if isinstance(encoded, export.ExportOutcome):
            return encoded
        body, truncated = encoded
        if self.credentials is not None and self.credentials.refresh():
            await self._close_channel()  # the next channel uses the rotated certificates
        response = b""
        try:
            response = await self._export_call()(
                body, timeout=timeout, metadata=self.metadata, compression=self.compression
            )
            outcome = export.ExportOutcome.success()
        except self._grpc.aio.AioRpcError as error:
            outcome = _outcome(error, self.target, self._logged)
        return self.batches.settle(outcome, response or b"", spans, truncated)

    async def _close_channel(self) -> None:
        channel, self._channel, self._call = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def close(self) -> None:
        self.batches.clear()
        await self._close_channel()
