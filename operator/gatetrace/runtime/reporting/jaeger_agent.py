"""The ``jaegerAgent`` reporter: ``Agent.emitBatch`` over UDP, thrift compact protocol.

Spans are encoded one by one (:mod:`.jaeger_compact`) and packed greedily
into datagrams of at most ``max_packet_size`` bytes (65,000, the Jaeger
agent's limit); a span that cannot fit a datagram on its own is dropped and
reported as ``too_large``. Each datagram carries the spans' Process (from
their :class:`~gatetrace.runtime.span.Resource`), an increasing ``seqNo``
and the cumulative ClientStats (full-queue drops come from the batching
engine through ``full_queue_dropped``; too-large and failed-to-send drops are
counted here), so the agent can report what the client lost.

The socket is non-blocking and sends go through the event loop; encoding
yields to the loop between datagrams, so a large batch does not stall
request handling. UDP gives no delivery feedback: a send that the kernel
accepted is a success.
"""

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import export
from gatetrace.runtime.reporting import jaeger_compact as _compact
from gatetrace.runtime.reporting import jaeger_thrift as _jt

__all__ = ["DEFAULT_PORT", "MAX_PACKET_SIZE", "JaegerAgentExporter"]

DEFAULT_PORT = 6831
"""The agent's compact-protocol UDP port."""
MAX_PACKET_SIZE = 65_000
"""The largest datagram the Jaeger agent reads."""
_RESOLVE_EVERY = 60.0
"""Seconds between DNS look-ups of the agent's host (it may move)."""

_log = logging.getLogger(__name__)

_Address = tuple[Any, ...]
"""A socket address as getaddrinfo returns it (IPv4 pair or IPv6 4-tuple)."""


class JaegerAgentExporter:
    """Sends batches to a Jaeger agent at ``host:port`` (UDP). See the module docstring."""

    name = "jaegerAgent"

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        max_packet_size: int = MAX_PACKET_SIZE,
        max_string_bytes: int = _jt.DEFAULT_MAX_STRING_BYTES,
        full_queue_dropped: Callable[[], float] | None = None,
    ) -> None:
        if not host:
            raise ValueError("host: must not be empty")
        if not 0 < port < 65536:
            raise ValueError(f"port: must be 1..65535, got {port}")
        if not 1024 <= max_packet_size <= MAX_PACKET_SIZE:
            raise ValueError(
                f"max_packet_size: must be 1024..{MAX_PACKET_SIZE}, got {max_packet_size}"
            )
        self.host = host
        self.port = port
        self.max_packet_size = max_packet_size
        self.sanitizer = _jt.ValueSanitizer(max_string_bytes)
        self._encoder = _compact.CompactEncoder(self.sanitizer)
        self.full_queue_dropped = full_queue_dropped
        """Cumulative spans the engine dropped on a full queue (ClientStats)."""
        self._retrying: Sequence[_span.Span] | None = None
        self._socket: socket.socket | None = None
        self._address: _Address | None = None
        self._resolved_at = 0.0
        self.seq_no = 0
        """Sequence number of the last datagram sent (the first one is 1)."""
        self.too_large_dropped = 0
        """Spans dropped because they could not fit a datagram (cumulative)."""
        self.failed_to_emit = 0
        """Spans in datagrams the socket refused (cumulative)."""
        self.datagrams_sent = 0
        """Datagrams the socket accepted (cumulative)."""

    # -- transport --------------------------------------------------------------

    def watch_queue_drops(self, count: Callable[[], float]) -> None:
        """The engine's queue-full counter (``export.ReportsQueueDrops``), unless one was
        given at construction."""
        if self.full_queue_dropped is None:
            self.full_queue_dropped = count

    async def _target(self) -> tuple[socket.socket, _Address]:
        now = time.monotonic()
        sock, address = self._socket, self._address
        if sock is None or address is None or now - self._resolved_at > _RESOLVE_EVERY:
            infos = await asyncio.get_running_loop().getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
            )
            family, kind, proto, _, address = infos[0]
            if sock is None or sock.family != family:
                if sock is not None:
                    sock.close()
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                self._socket = sock
            self._address = address
            self._resolved_at = now
        return sock, tuple(address)

    def _reset(self) -> None:
        sock, self._socket, self._address = self._socket, None, None
        if sock is not None:
            sock.close()

    # -- Exporter -----------------------------------------------------------------

    def _groups(self, spans: Sequence[_span.Span]) -> list[tuple[_span.Resource, list[_span.Span]]]:
        """Spans grouped by resource (one Process per batch), order kept within a group."""
        first = spans[0].resource
        if all(span.resource is first for span in spans):
            return [(first, list(spans))]
        groups: dict[_span.Resource, list[_span.Span]] = {}
        for span in spans:
            groups.setdefault(span.resource, []).append(span)
        return list(groups.items())

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        """Send ``spans`` in as many datagrams as needed. Never raises."""
        if not spans:
            return export.ExportOutcome.success()
        deadline = time.monotonic() + timeout
        try:
            sock, address = await asyncio.wait_for(self._target(), timeout)
        except TimeoutError:
            return export.ExportOutcome(export.ExportResult.RETRYABLE, "timeout")
        except OSError as error:
            reason = "dns_error" if isinstance(error, socket.gaierror) else "connection_error"
            return export.ExportOutcome(export.ExportResult.RETRYABLE, reason)
        progress = _Progress(self, sock, address, deadline)
        try:
            for resource, group in self._groups(spans):
                if not await progress.send_group(self._encoder.process(resource), group):
                    break
        except Exception:  # a bug in the encoder must not loop through retries
            _log.exception("jaegerAgent: encoding failed")
            self.sanitizer.take()
            return export.ExportOutcome(export.ExportResult.FAILURE, "encode_error")
        truncated = self.sanitizer.take()
        if spans is self._retrying:
            truncated = {}  # counted on the first attempt
        if progress.error and not progress.sent:
            # nothing left the host: the engine may retry the whole batch later
            self._retrying = spans
            return export.ExportOutcome(
                export.ExportResult.RETRYABLE, progress.error, truncated=truncated
            )
        self._retrying = None
        self.too_large_dropped += progress.too_large
        self.failed_to_emit += progress.failed
        dropped = {}
        if progress.too_large:
            dropped["too_large"] = progress.too_large
        if progress.failed:
            dropped["export_failed"] = progress.failed
        return export.ExportOutcome.success(dropped, truncated)

    async def close(self) -> None:
        self._reset()


class _Progress:
    """One export call: packs encoded spans into datagrams and tallies the results."""

    __slots__ = ("address", "deadline", "error", "exporter", "failed", "sent", "sock", "too_large")

    def __init__(
        self, exporter: JaegerAgentExporter, sock: socket.socket, address: _Address, deadline: float
    ) -> None:
        self.exporter = exporter
        self.sock = sock
        self.address = address
        self.deadline = deadline
        self.sent = self.failed = self.too_large = 0
        self.error = ""

    async def send_group(self, process: bytes, spans: Sequence[_span.Span]) -> bool:
        """Send spans sharing one Process; False when sending should stop (nothing got out)."""
        exporter = self.exporter
        encode = exporter._encoder.span
        budget = exporter.max_packet_size - _compact.MESSAGE_OVERHEAD - len(process)
        pending: list[bytes] = []
        size = 0
        for index, span in enumerate(spans):
            encoded = encode(span)
            if len(encoded) > budget:
                self.too_large += 1
                continue
            if size + len(encoded) > budget:
                if not await self._flush(process, pending):
                    return False
                pending, size = [], 0
            pending.append(encoded)
            size += len(encoded)
            if index % export.ENCODE_SLICE == export.ENCODE_SLICE - 1:
                await asyncio.sleep(0)  # let requests run while a big batch encodes
        return not pending or await self._flush(process, pending)

    async def _flush(self, process: bytes, pending: list[bytes]) -> bool:
        exporter = self.exporter
        exporter.seq_no += 1
        stats = _jt.client_stats(
            exporter.full_queue_dropped,
            exporter.too_large_dropped + self.too_large,
            exporter.failed_to_emit + self.failed,
        )
        message = exporter._encoder.message(process, pending, exporter.seq_no, stats)
        reason = await self._send(message)
        if not reason:
            exporter.datagrams_sent += 1
            self.sent += len(pending)
            return True
        self.failed += len(pending)
        self.error = self.error or reason
        return self.sent > 0

    async def _send(self, message: bytes) -> str:
        """Send one datagram; '' on success, else the failure reason."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        try:
            if self.sock.fileno() < 0:  # reset after an earlier failure in this batch
                self.sock, self.address = await asyncio.wait_for(self.exporter._target(), remaining)
            if not _send_datagram(self.sock, message, self.address):  # the buffer is full
                await asyncio.wait_for(
                    _send_when_writable(self.sock, message, self.address), remaining
                )
        except TimeoutError:
            return "timeout"
        except OSError as error:
            self.exporter._reset()  # a fresh socket and a fresh look-up next time
            return errno.errorcode.get(error.errno or 0, "oserror").lower()  # emsgsize...
        return ""


def _send_datagram(sock: socket.socket, message: bytes, address: _Address) -> bool:
    """Send one datagram now; False when the socket's buffer has no room (OSError for a
    refusal). A direct ``sendto``, not ``loop.sock_sendto``: uvloop has none."""
    try:
        sock.sendto(message, address)
    except BlockingIOError:
        return False
    return True


async def _send_when_writable(sock: socket.socket, message: bytes, address: _Address) -> None:
    """Wait until the socket takes the datagram (any event loop: add_writer)."""
    loop = asyncio.get_running_loop()
    while True:
        ready: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_writer(fd)
        if _send_datagram(sock, message, address):
            return


def _wake(ready: "asyncio.Future[None]") -> None:
    if not ready.done():
        ready.set_result(None)
