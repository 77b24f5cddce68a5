"""The local channel between the gateway's supervisor and one worker process.

A connected Unix socket pair (the worker inherits its end); each message is a 4-byte
big-endian length and a pickled Python value. Pickle is safe here and only here: both
ends are this gateway's own processes, the socket is never bound to a path or a port,
and nothing from a client crosses it unencoded. A frame larger than
:data:`MAX_FRAME_BYTES` ends the channel (a bug, not a request to serve).

:class:`Channel` sends without waiting (``send``: the transport buffers; callers bound
what they queue with :attr:`Channel.backlog`) and receives one message at a time.
:class:`Calls` pairs requests with their replies by id, with a timeout each.
"""

import asyncio
import contextlib
import itertools
import pickle
import socket
import struct
from typing import Any, Final

__all__ = ["MAX_FRAME_BYTES", "Calls", "Channel", "ChannelClosedError", "RemoteError"]

MAX_FRAME_BYTES: Final = 64 << 20
_HEADER = struct.Struct(">I")


class ChannelClosedError(Exception):
    """The other process is gone (or sent something that is not a frame)."""


class RemoteError(Exception):
    """The other side answered a call with an error: ``reply`` says which."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(str(reply.get("message", "the worker refused")))
        self.reply = reply


class Channel:
    """One end of a supervisor <-> worker socket pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> "Channel":
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME_BYTES)
        return cls(reader, writer)

    @property
    def backlog(self) -> int:
        """Bytes sent but not yet taken by the other side's socket."""
        transport = self._writer.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()

    @property
    def closed(self) -> bool:
        return self._writer.transport.is_closing()

    def send(self, message: Any) -> None:
        """Queue ``message`` (never waits); :class:`ChannelClosedError` when the peer is gone."""
        if self._writer.transport.is_closing():
            raise ChannelClosedError("the channel is closed")
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > MAX_FRAME_BYTES:
            raise ValueError(f"a message of {len(payload)} bytes exceeds {MAX_FRAME_BYTES}")
        self._writer.write(_HEADER.pack(len(payload)) + payload)

    async def receive(self) -> Any:
        """The next message; :class:`ChannelClosedError` at the end."""
        try:
            header = await self._reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > MAX_FRAME_BYTES:
                raise ChannelClosedError(f"a frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
            payload = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise ChannelClosedError("the other process closed the channel") from e
        return pickle.loads(payload)  # noqa: S301 -- our own process (module docstring)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError as e:
            raise ChannelClosedError("the other process closed the channel") from e

    def close(self) -> None:
        """Close now (what is still buffered may be lost: see :meth:`aclose`)."""
        self._writer.close()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close once everything sent so far has been written (at most ``timeout`` s)."""
        self._writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout)


class Calls:
    """Requests over a :class:`Channel` and their replies, by id."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ended = False

    async def call(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, "id": n, **fields}`` and wait for the reply with that id;
        :class:`RemoteError` for an ``ok: False`` reply, ``TimeoutError``,
        :class:`ChannelClosedError`."""
        if self._ended:
            raise ChannelClosedError("the worker exited")
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        try:
            self.channel.send({"op": op, "id": call_id, **fields})
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._waiting.pop(call_id, None)
        if not reply.get("ok"):
            raise RemoteError(reply)
        return reply

    def answered(self, reply: dict[str, Any]) -> bool:
        """Hand a received reply to its caller; False when nobody waits for that id."""
        future = self._waiting.pop(reply.get("id", -1), None)
        if future is None or future.done():
            return False
        future.set_result(reply)
        return True

    def fail_all(self) -> None:
        """The channel ended: every waiting call (and any later) raises
        :class:`ChannelClosedError`."""
        self._ended = True
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ChannelClosedError("the worker exited"))
        self._waiting.clear()
