"""Client connections of the proxy: a request-head deadline, a keep-alive idle deadline
and a bound on how many are open at once.

aiohttp cuts idle keep-alive connections but never a client that trickles a request
head a byte at a time (slowloris): each such connection holds a file descriptor
forever, and a few hundred of them starve every other client. Each connection here
is a :class:`GuardedProtocol` in front of aiohttp's own protocol, moving through:

``head``
    from the connection's start, or the first byte after an idle spell, until its
    request reaches the app: the whole head must arrive within ``head_timeout``
    (a deadline, not an inactivity timer, so one byte a second does not extend it).
    Past it the client gets ``408`` and the connection is closed.
``busy``
    a request is being handled: the routes' own timeouts apply.
``idle``
    between keep-alive requests: closed after ``idle_timeout`` without a byte.

Whatever the phase, a client that stops reading its answer (the write buffer stays
above its high-water mark, so the writer waits) is cut when it has not drained it for
``idle_timeout``, counted as ``idle``: a slow reader holds its connection no longer
than an idle one. A connection cut by a deadline whose answers the client has not read
(the write buffer is not empty) is aborted rather than closed: a graceful close would
wait for them.

Connections past ``max_connections`` are answered ``503`` and closed at once,
never queued. ``gatetrace_gateway_connections_open``, ``..._rejected_total`` and
``..._timed_out_total{phase}`` report it all.
"""

import asyncio
import resource
import socket
import typing
from typing import Any, Final

from aiohttp import web

from gatetrace.runtime import metrics as _metrics

__all__ = ["ConnectionGuard", "GuardedProtocol", "GuardedSite", "default_max_connections"]

_HEAD, _BUSY, _IDLE = "head", "busy", "idle"


def _plain(status: str, text: str, *extra: str) -> bytes:
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "Connection: close", "Content-Type: text/plain", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_REQUEST_TIMEOUT: Final = _plain("408 Request Timeout", "request head not received in time\n")
_OVERLOADED: Final = _plain(
    "503 Service Unavailable", "too many connections, retry\n", "Retry-After: 1"
)


def _close(transport: asyncio.Transport) -> None:
    """Closes gracefully when all written has reached the kernel, else aborts: with the
    client not reading (answers of pipelined requests pile up, or the last answer did
    not fit), a graceful close would wait for a flush that never comes and keep the
    connection, and its file descriptor, forever."""
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


def default_max_connections() -> int:
    """Half the process's open-file limit (the rest is for upstream connections, the
    admin port and files), at least 64."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(64, soft // 2)


class ConnectionGuard:
    """The limits, the open connections and their metrics, shared by one listener."""

    def __init__(
        self,
        *,
        head_timeout: float,
        idle_timeout: float,
        max_connections: int,
        registry: _metrics.Registry,
    ) -> None:
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.open: dict[asyncio.BaseTransport, GuardedProtocol] = {}
        registry.gauge(
            "gatetrace_gateway_connections_open", "Client connections open on the proxy port"
        ).set_function(lambda: float(len(self.open)))
        self._rejected = registry.counter(
            "gatetrace_gateway_connections_rejected",
            "Client connections closed at once because max_connections were open",
        )
        self._timed_out = registry.counter(
            "gatetrace_gateway_connections_timed_out",
            "Client connections closed by a deadline (head: request head too slow; "
            "idle: keep-alive connection unused)",
            ["phase"],
        )

        self.tick = max(0.01, min(1.0, head_timeout / 4, idle_timeout / 4))
        """How often deadlines are checked: one timer per listener, not per request."""
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def protocol(self, inner: asyncio.Protocol) -> "GuardedProtocol":
        return GuardedProtocol(inner, self)

    def now(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def watch(self) -> None:
        """Make sure the sweeper runs (a connection was opened)."""
        if self._sweeper is None:
            self.now()
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.now()
        for conn in list(self.open.values()):
            conn.check(now)
        if self.open:
            self.watch()

    def rejected(self) -> None:
        self._rejected.inc()

    def timed_out(self, phase: str) -> None:
        self._timed_out.inc((phase,))


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the deadlines of the module docstring."""

    __slots__ = ("_deadline", "_guard", "_inner", "_stalled", "_state", "_transport")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._state = _HEAD
        self._deadline = float("inf")
        """When the current head/idle phase ends (loop time); checked by the guard's sweeper."""
        self._stalled: asyncio.TimerHandle | None = None  # the client not reading
        self._transport: asyncio.Transport | None = None

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # a stream transport; not necessarily an asyncio.Transport subclass (uvloop's are not)
        transport = typing.cast(asyncio.Transport, base)
        guard = self._guard
        if len(guard.open) >= guard.max_connections:
            guard.rejected()
            transport.write(_OVERLOADED)
            _close(transport)
            self._state = "rejected"
            return
        self._transport = transport
        guard.open[transport] = self
        guard.watch()
        self._arm(guard.head_timeout, _HEAD)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return  # rejected: nothing reaches aiohttp
        if self._state == _IDLE:  # the first byte of the next request head
            self._arm(self._guard.head_timeout, _HEAD)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._transport is None:
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        transport, self._transport = self._transport, None
        if transport is None:
            return
        self._cancel()
        self._unstall()
        self._guard.open.pop(transport, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._unstall()
            loop = asyncio.get_running_loop()
            self._stalled = loop.call_later(self._guard.idle_timeout, self._not_reading)
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._unstall()
            self._inner.resume_writing()

    # -- request lifecycle (from the proxy's handler) ---------------------------

    def busy(self) -> None:
        self._state = _BUSY
        self._deadline = float("inf")

    def idle(self) -> None:
        if self._transport is not None:
            self._arm(self._guard.idle_timeout, _IDLE)

    # -- deadlines ------------------------------------------------------------

    def _arm(self, seconds: float, state: str) -> None:
        self._state = state
        self._deadline = self._guard.now() + seconds

    def _cancel(self) -> None:
        self._deadline = float("inf")

    def check(self, now: float) -> None:
        """Called by the guard's sweeper: past the deadline of its head/idle phase?"""
        if now >= self._deadline:
            self._expired(self._state)

    def _unstall(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def _not_reading(self) -> None:
        self._stalled = None
        transport = self._transport
        if transport is None:
            return
        self._guard.timed_out(_IDLE)
        transport.abort()  # what it did not read could never be flushed

    def _expired(self, state: str) -> None:
        self._deadline = float("inf")
        transport = self._transport
        if transport is None or self._state != state:
            return
        self._guard.timed_out(state)
        if state == _HEAD:
            transport.write(_REQUEST_TIMEOUT)
        _close(transport)


class GuardedSite(web.BaseSite):
    """A TCP listener whose connections go through a :class:`ConnectionGuard`."""

    __slots__ = ("_bound_port", "_guard", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        *,
        backlog: int = 512,
        sock: socket.socket | None = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._guard = host, port, guard
        self._sock = sock
        """A listening socket to accept on (a gateway worker's, inherited), else bind."""
        self._bound_port: int | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._bound_port or self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        guard = self._guard

        def protocol() -> Any:
            return guard.protocol(server())

        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                protocol, sock=self._sock, backlog=self._backlog
            )
        else:
            self._server = await loop.create_server(
                protocol, self._host, self._port, backlog=self._backlog, reuse_address=True
            )
        if self._server.sockets:
            self._bound_port = int(self._server.sockets[0].getsockname()[1])
