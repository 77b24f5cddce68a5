"""The HTTP transport shared by the Zipkin, OTLP and Jaeger collector reporters.

One :class:`HttpTransport` per reporter: a lazily created aiohttp session
bound to the loop it is first used on, a per-request deadline, optional gzip
(done in a worker thread for large bodies: zlib releases the GIL, so the
event loop keeps serving requests while a batch compresses), and the one
place that turns wire results into an :class:`~.export.ExportOutcome`:

* 2xx -> ``SUCCESS``;
* connection errors, timeouts, 408, 429, 502, 503, 504 -> ``RETRYABLE``, with
  the ``Retry-After`` header (seconds or HTTP date) as ``retry_after``;
* anything else (400, 401, 404, 500, ...) -> ``FAILURE``: the batch would be
  refused again, so retrying only delays the spans queued behind it;
* a TLS failure (the server's certificate not trusted or not for this name:
  ``tls_certificate``; the handshake refused, e.g. a client certificate the
  server wants and did not get: ``tls_handshake``) -> ``FAILURE`` as well, logged
  once per cause: only a configuration change mends it.

HTTPS endpoints are verified against the system's CAs unless
:class:`~.tls.TlsSettings` say otherwise (private CA, client certificate for
mutual TLS, ``server_name``, ``insecure_skip_verify``).

The transport never raises: every failure becomes an outcome whose
``reason`` (``connection_refused``, ``timeout``, ``http_503``...) labels the
failure counters.
"""

import asyncio
import email.utils
import logging
import ssl
import time
import urllib.parse
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from gatetrace.runtime.reporting import export
from gatetrace.runtime.reporting import tls as _tls

__all__ = [
    "RETRYABLE_STATUSES",
    "HttpResponse",
    "HttpTransport",
    "classify_status",
    "parse_retry_after",
    "tls_failure",
]

_log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
"""Statuses after which the same request may succeed later (OTLP/HTTP spec, plus 408)."""

_THREAD_GZIP_BYTES = 32 * 1024
"""Bodies at least this large are compressed off the event loop."""
_MAX_RESPONSE_BYTES = 64 * 1024
"""Response bodies are read up to this size (enough for an OTLP partial-success message)."""
_MAX_RETRY_AFTER = 3600.0
_GZIP_WBITS = 31
"""zlib's ``wbits`` for a gzip member (header, deflate, CRC-32 and size in one C call):
measured with callgrind, 30% fewer instructions than :func:`gzip.compress`, which
computes the CRC in a second pass and joins header, body and trailer in Python."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back for one POST: the outcome plus, on 2xx, the start of the body."""

    outcome: export.ExportOutcome
    status: int | None = None
    """HTTP status, or None when no response arrived."""
    body: bytes = b""
    """The response body (at most 64 KiB), read for 2xx answers only."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value (seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts "²" (0xB2 in latin-1)
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(max(delay, 0.0), _MAX_RETRY_AFTER)


def classify_status(status: int, retry_after: str | None = None) -> export.ExportOutcome:
    """The outcome of an HTTP answer with ``status`` (see the module docstring)."""
    if 200 <= status < 300:
        return export.ExportOutcome.success()
    reason = f"http_{status}"
    if status in RETRYABLE_STATUSES:
        return export.ExportOutcome(
            export.ExportResult.RETRYABLE, reason, retry_after=parse_retry_after(retry_after)
        )
    return export.ExportOutcome(export.ExportResult.FAILURE, reason)


def _retryable(reason: str) -> HttpResponse:
    return HttpResponse(export.ExportOutcome(export.ExportResult.RETRYABLE, reason))


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def tls_failure(error: BaseException) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``error`` is a TLS failure, else None: ``tls_certificate``
    when the server's certificate was refused, ``tls_handshake`` for any other TLS error."""
    for cause in _causes(error):
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            return "tls_certificate", str(cause.certificate_error)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "tls_certificate", cause.verify_message or str(cause)
        if isinstance(cause, ssl.SSLError):
            return "tls_handshake", str(cause.reason or cause)
    return None


def _connection_reason(error: BaseException) -> str:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection_refused"
        if isinstance(cause, ConnectionResetError):
            return "connection_reset"
        cause = cause.__cause__ or cause.__context__
        if cause is error:
            break
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected"
    return "connection_error"


class HttpTransport:
    """POSTs encoded batches to one endpoint. Create it anywhere; use it on one loop."""

    __slots__ = (
        "_headers",
        "_logged",
        "_server_hostname",
        "_session",
        "_tls",
        "_url",
        "endpoint",
        "gzip",
        "gzip_level",
    )

    def __init__(
        self,
        endpoint: str,
        *,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        gzip_level: int = 6,
        tls: _tls.TlsSettings | None = None,
    ) -> None:
        """``tls`` applies to an https endpoint only: with an http endpoint it is refused
        (it would silently do nothing). Raises ValueError naming the field at fault."""
        url = urllib.parse.urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint: expected an http(s) URL with a host, got {endpoint!r}")
        for name, value in (headers or {}).items():
            if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
                raise ValueError(f"headers: invalid header {name!r}")
        if tls is not None and url.scheme != "https":
            raise ValueError(f"tls: set for an http:// endpoint ({url.hostname}); use https://")
        self.endpoint = endpoint
        self.gzip = gzip
        self.gzip_level = gzip_level
        self._url = endpoint
        self._headers: dict[str, str] = {**(headers or {}), "Content-Type": content_type}
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._session: aiohttp.ClientSession | None = None
        self._tls = None if tls is None else _tls.Reloading(tls, _tls.client_context)
        self._server_hostname = tls.server_name if tls is not None else None
        self._logged: set[tuple[str, str]] = set()

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=4, ttl_dns_cache=60, ssl=True if self._tls is None else self._tls.value
                ),
                auto_decompress=True,
                trust_env=False,
            )
        return session

    async def _compress(self, body: bytes) -> bytes:
        if len(body) >= _THREAD_GZIP_BYTES:
            return await asyncio.to_thread(zlib.compress, body, self.gzip_level, _GZIP_WBITS)
        return zlib.compress(body, self.gzip_level, _GZIP_WBITS)

    async def post(self, body: bytes, timeout: float) -> HttpResponse:
        """POST ``body`` within ``timeout`` seconds (compression included). Never raises."""
        deadline = time.monotonic() + timeout
        try:
            if self.gzip:
                body = await self._compress(body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _retryable("timeout")
            if self._tls is not None and self._tls.refresh():
                await self.close()  # new connections use the rotated certificates
            session = self._get_session()
            client_timeout = aiohttp.ClientTimeout(total=remaining)
            async with session.post(
                self._url,
                data=body,
                headers=self._headers,
                timeout=client_timeout,
                server_hostname=self._server_hostname,
            ) as response:
                outcome = classify_status(response.status, response.headers.get("Retry-After"))
                payload = b""
                if outcome.result is export.ExportResult.SUCCESS:
                    payload = await response.content.read(_MAX_RESPONSE_BYTES)
                return HttpResponse(outcome, response.status, payload)
        except TimeoutError:
            return _retryable("timeout")
        except aiohttp.InvalidURL:
            return HttpResponse(
                export.ExportOutcome(export.ExportResult.FAILURE, "invalid_url"), None
            )
        except (aiohttp.ClientError, OSError) as error:
            failed = tls_failure(error)
            if failed is not None:
                return self._tls_failed(*failed)
            return _retryable(_connection_reason(error))

    def _tls_failed(self, reason: str, detail: str) -> HttpResponse:
        if (reason, detail) not in self._logged and len(self._logged) < 16:
            self._logged.add((reason, detail))
            url = urllib.parse.urlsplit(self.endpoint)  # no userinfo in the log
            _log.warning(
                "reporter endpoint %s:%s: TLS failed (%s): %s",
                url.hostname,
                url.port,
                reason,
                detail,
            )
        return HttpResponse(export.ExportOutcome(export.ExportResult.FAILURE, reason))

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
