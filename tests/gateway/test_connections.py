"""Client connection limits on the proxy port, with real sockets on 127.0.0.1: a request
head that trickles in is cut at its deadline (408), idle keep-alive connections close,
connections past the bound are refused at once (503), and normal clients are served
throughout. Deadlines are configured short (0.3-0.5 s) to keep the tests quick."""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from serverharness import TOKEN, upstream
from tests import loopback

from gatetrace.gateway import config, server

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def _gateway(
    delay: float = 0.0, **limits: Any
) -> AsyncIterator[tuple[server.Gateway, str, int]]:
    async with upstream(delay=delay) as up:
        doc = {
            "listen": "127.0.0.1:0",
            "admin": {"listen": "127.0.0.1:0"},
            "routes": [{"name": "users", "prefix": "/api/users", "upstream": up}],
            "connections": limits,
        }
        gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.2)
        await gw.start()
        assert gw.proxy_address is not None
        try:
            yield gw, *gw.proxy_address
        finally:
            await gw.stop(2.0)


async def _metrics(gw: server.Gateway) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/metrics") as r:
        text = await r.text()
    found = {}
    for line in text.splitlines():
        if line.startswith("gatetrace_gateway_connections"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


async def _normal_request(gw: server.Gateway) -> int:
    async with aiohttp.ClientSession() as http, http.get(gw.proxy_url + "/api/users/1") as r:
        await r.read()
        return r.status


async def _read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def test_a_trickled_request_head_is_cut_at_its_deadline() -> None:
    async with _gateway(headTimeoutMs=400) as (gw, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        head = b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100

        async def trickle() -> None:  # one byte every 20 ms: always "active", never complete
            for byte in head:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.02)

        sending = asyncio.create_task(trickle())
        answer = await _read_all(reader, 5.0)  # until the gateway closes the connection
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        took = time.monotonic() - started
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert 0.3 < took < 2.5, took
        assert await _normal_request(gw) == 200
        counted = await _metrics(gw)
        assert counted['gatetrace_gateway_connections_timed_out_total{phase="head"}'] == 1


async def test_a_silent_connection_is_cut_too() -> None:
    async with _gateway(headTimeoutMs=300) as (_gw, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        answer = await _read_all(reader, 5.0)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")


async def test_an_idle_keep_alive_connection_is_closed_and_a_slow_upstream_is_not_cut() -> None:
    # the upstream takes longer than the head deadline: a request being handled is busy
    async with _gateway(delay=0.6, headTimeoutMs=300, idleTimeoutMs=400) as (gw, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5.0)
        assert status.startswith(b"HTTP/1.1 200 "), status
        started = time.monotonic()
        rest = await _read_all(reader, 5.0)  # the body, then EOF when the idle deadline hits
        assert b'"path"' in rest
        assert 0.3 < time.monotonic() - started < 2.5
        writer.close()
        counted = await _metrics(gw)
        assert counted['gatetrace_gateway_connections_timed_out_total{phase="idle"}'] == 1
        assert counted.get('gatetrace_gateway_connections_timed_out_total{phase="head"}', 0) == 0


async def test_the_next_head_on_a_keep_alive_connection_has_its_own_deadline() -> None:
    # after an answer the connection is idle (long deadline); the first byte of the next
    # head starts a head deadline, which trickling does not extend
    async with _gateway(headTimeoutMs=400, idleTimeoutMs=5000) as (gw, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert head.startswith(b"HTTP/1.1 200 "), head[:80]
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await asyncio.wait_for(reader.readexactly(length), 5.0)
        await asyncio.sleep(0.6)  # idle past the head deadline: not cut
        started = time.monotonic()
        second = b"GET /api/users/2 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100

        async def trickle() -> None:
            for byte in second:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.02)

        sending = asyncio.create_task(trickle())
        answer = await _read_all(reader, 5.0)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        took = time.monotonic() - started
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert 0.3 < took < 2.5, took
        counted = await _metrics(gw)
        assert counted['gatetrace_gateway_connections_timed_out_total{phase="head"}'] == 1
        assert counted.get('gatetrace_gateway_connections_timed_out_total{phase="idle"}', 0) == 0


async def test_a_client_that_never_reads_is_cut_at_the_idle_deadline_too() -> None:
    # pipelined requests whose answers the client never reads: they fill every buffer, so
    # a graceful close could never flush and the connection (and its fd) would stay open
    async with _gateway(headTimeoutMs=5000, idleTimeoutMs=300) as (gw, host, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        _reader, writer = await asyncio.open_connection(sock=sock)
        head = b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n"
        writer.write(head * 3000)  # about 12 MB of answers, never read
        deadline = time.monotonic() + 10.0
        counted = await _metrics(gw)
        while counted["gatetrace_gateway_connections_open"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            counted = await _metrics(gw)
        writer.transport.abort()
        assert counted["gatetrace_gateway_connections_open"] == 0, counted
        assert counted['gatetrace_gateway_connections_timed_out_total{phase="idle"}'] >= 1
        assert await _normal_request(gw) == 200


async def test_a_client_that_stops_reading_a_large_answer_is_cut_at_the_idle_deadline() -> None:
    # slow read: the proxy's writes wait for a client that never drains them; the
    # connection is cut once its answer has waited idleTimeoutMs, the relay ends
    big = b"x" * (32 * 1024 * 1024)

    async def large(_request: web.Request) -> web.Response:
        return web.Response(body=big)

    app = web.Application()
    app.router.add_get("/{tail:.*}", large)
    runner, up = await loopback.start(app)
    doc = {
        "listen": "127.0.0.1:0",
        "admin": {"listen": "127.0.0.1:0"},
        "routes": [{"name": "big", "prefix": "/big", "upstream": up}],
        "connections": {"idleTimeoutMs": 300},
    }
    gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.2)
    await gw.start()
    assert gw.proxy_address is not None
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, gw.proxy_address)
        _reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /big/file HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
        deadline = time.monotonic() + 10.0
        await asyncio.sleep(0.5)
        counted = await _metrics(gw)
        while counted["gatetrace_gateway_connections_open"] and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            counted = await _metrics(gw)
        writer.transport.abort()
        assert counted["gatetrace_gateway_connections_open"] == 0, counted
        assert counted['gatetrace_gateway_connections_timed_out_total{phase="idle"}'] == 1
    finally:
        await gw.stop(2.0)
        await runner.cleanup()


async def test_connections_past_the_bound_are_refused_at_once_and_others_still_served() -> None:
    async with _gateway(headTimeoutMs=1500, maxConnections=5) as (gw, host, port):
        slow = [await asyncio.open_connection(host, port) for _ in range(5)]
        for _, writer in slow:
            writer.write(b"GET /api/users/1 HTTP/1.1\r\n")  # and then nothing
            await writer.drain()
        await asyncio.sleep(0.1)
        assert (await _metrics(gw))["gatetrace_gateway_connections_open"] == 5
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        refused = await _read_all(reader, 5.0)
        assert refused.startswith(b"HTTP/1.1 503 "), refused[:80]
        assert time.monotonic() - started < 1.0  # not queued behind the slow ones
        writer.close()
        counted = await _metrics(gw)
        assert counted["gatetrace_gateway_connections_rejected_total"] == 1
        # the slow ones are cut at their deadline, then normal clients get in again
        for slow_reader, slow_writer in slow:
            assert (await _read_all(slow_reader, 5.0)).startswith(b"HTTP/1.1 408 ")
            slow_writer.close()
        assert await _normal_request(gw) == 200


async def test_many_slow_clients_do_not_starve_normal_ones() -> None:
    async with _gateway(headTimeoutMs=3000, maxConnections=100) as (gw, host, port):
        slow = [await asyncio.open_connection(host, port) for _ in range(60)]
        for _, writer in slow:
            writer.write(b"GET /api/users/1 HTTP/1.1\r\nHost: x\r\n")
        statuses = [await _normal_request(gw) for _ in range(20)]
        assert statuses == [200] * 20
        for _, writer in slow:
            writer.close()


def test_limits_are_validated_by_name() -> None:
    with pytest.raises(config.ConfigError, match=r"connections\.headTimeoutMs"):
        config.parse_config({"connections": {"headTimeoutMs": 0}})
    with pytest.raises(config.ConfigError, match=r"connections\.maxConnections"):
        config.parse_config({"connections": {"maxConnections": -1}})
