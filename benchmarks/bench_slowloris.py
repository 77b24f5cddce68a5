"""The proxy's p99 latency during a slowloris of 200 connections, against the same
gateway without one, measured in alternating rounds of one run.

Processes on 127.0.0.1: the upstream (``bench_gateway``'s tiny aiohttp app) and the real
``gatetrace gateway`` CLI (default connection limits: 10 s request-head deadline). This
process is the client: ``REQUESTS`` keep-alive requests over ``WORKERS`` connections per
measurement; during an attack round, ``SLOW`` more connections each send a partial
request head and then one byte a second. Each attack round checks that it measured what
it claims: the gateway's ``connections_open`` gauge showed every slow connection open
before and after the measurement, none had been cut or refused meanwhile (the
rejected and timed-out counters did not move; the measurement ends well inside the head
deadline), every slow connection was sent a byte during the measurement (it spans at
least ``MIN_SECONDS``), and every normal request got 200 with the upstream's body.
Without the deadline the slow connections would simply stay; the point measured here
is that while they are open, normal clients keep their latency.

``run()`` returns one row: p99 under attack / p99 without (goal <= 2).
"""

import asyncio
import contextlib
import os
import statistics
import time

import aiohttp

from benchmarks import bench_gateway, common

SLOW = 200
REQUESTS = 600
WORKERS = 4
MIN_SECONDS = 1.5  # each measurement spans at least one trickle tick of every slow connection
ROUNDS = 3
PATH = "/api/items/1"


async def _wait_ready(proxy: str) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(proxy + PATH) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.1)


async def _connections(http: aiohttp.ClientSession, admin: str) -> dict[str, float]:
    """The gateway's ``gatetrace_gateway_connections_*`` series (open, rejected, timed out)."""
    async with http.get(admin + "/metrics") as response:
        text = await response.text()
    found = {
        key: float(value)
        for key, _, value in (line.rpartition(" ") for line in text.splitlines())
        if key.startswith("gatetrace_gateway_connections_")
    }
    if "gatetrace_gateway_connections_open" not in found:
        raise RuntimeError("no gatetrace_gateway_connections_open in /metrics")
    return found


def _cut(series: dict[str, float]) -> float:
    """Connections the gateway refused or cut so far."""
    return sum(value for key, value in series.items() if "_rejected" in key or "_timed_out" in key)


async def _latencies(proxy: str) -> list[float]:
    """Milliseconds per request, at least ``REQUESTS`` of them over at least
    ``MIN_SECONDS``; raises unless every request got the upstream's 200."""
    out: list[float] = []
    connector = aiohttp.TCPConnector(limit=WORKERS)
    until = time.monotonic() + MIN_SECONDS
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(count: int) -> None:
            done = 0
            while done < count or time.monotonic() < until:
                done += 1
                started = time.perf_counter()
                async with http.get(proxy + PATH) as response:
                    body = await response.read()
                out.append((time.perf_counter() - started) * 1000)
                if response.status != 200 or b'"item"' not in body:
                    raise RuntimeError(f"normal request failed: {response.status} {body[:80]!r}")

        await asyncio.gather(*(worker(REQUESTS // WORKERS) for _ in range(WORKERS)))
    return out


async def _slowloris(
    proxy: str, ticks: list[float]
) -> tuple[list[asyncio.StreamWriter], asyncio.Task[None]]:
    """``SLOW`` connections with a partial request head, then a byte a second on each
    still open; ``ticks`` gets the time of each round in which every one got its byte."""
    host, port = proxy.removeprefix("http://").split(":")
    writers: list[asyncio.StreamWriter] = []
    for index in range(SLOW):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {PATH} HTTP/1.1\r\nHost: x\r\nX-Slow-{index}: ".encode())
        writers.append(writer)

    async def trickle() -> None:
        while True:
            await asyncio.sleep(1.0)
            sent = 0
            for writer in writers:
                if not writer.is_closing():
                    writer.write(b"a")
                    sent += 1
            if sent == len(writers):
                ticks.append(time.monotonic())

    return writers, asyncio.create_task(trickle())


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def _measure(proxy: str, admin: str) -> tuple[float, float]:
    await _wait_ready(proxy)
    calm: list[float] = []
    attacked: list[float] = []
    async with aiohttp.ClientSession() as http:
        for round_ in range(ROUNDS):
            for attack in (round_ % 2 == 1, round_ % 2 == 0):  # alternate which goes first
                if not attack:
                    calm.append(_p99(await _latencies(proxy)))
                    continue
                ticks: list[float] = []
                opened = time.monotonic()
                writers, trickling = await _slowloris(proxy, ticks)
                try:
                    await asyncio.sleep(0.3)
                    before = await _connections(http, admin)
                    started = time.monotonic()
                    attacked.append(_p99(await _latencies(proxy)))
                    ended = time.monotonic()
                    after = await _connections(http, admin)
                    if ended - opened > 8.0:  # the default head deadline is 10 s
                        raise RuntimeError("the measurement ran into the head deadline")
                    open_before = before["gatetrace_gateway_connections_open"]
                    open_after = after["gatetrace_gateway_connections_open"]
                    if open_before < SLOW or open_after < SLOW:
                        raise RuntimeError(
                            f"slow connections not all open while measuring: "
                            f"{open_before}, {open_after}"
                        )
                    if _cut(after) != _cut(before):  # so the gauge counted the slow ones
                        raise RuntimeError(
                            f"connections refused or cut while measuring: {before} -> {after}"
                        )
                    if not any(started <= tick <= ended for tick in ticks):
                        raise RuntimeError("the slow connections did not trickle while measuring")
                finally:
                    trickling.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await trickling
                    for writer in writers:
                        writer.close()
                await asyncio.sleep(0.3)
    return min(attacked), min(calm)


def run() -> list[common.Row]:
    with bench_gateway.children() as kids:
        upstream = kids.start("upstream")
        with bench_gateway.gateway_cli(upstream) as gateway:
            attacked, calm = asyncio.run(_measure(gateway.proxy, gateway.admin))
    return [
        common.Row(
            f"proxy p99 latency during a slowloris of {SLOW} connections",
            attacked,
            calm,
            unit="ms",
            goal_ratio=2.0,
            peer_name="the same gateway without one",
        )
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for row in run():
        print(
            f"{row.name}: {row.ours:.2f} {row.unit} vs {row.peer:.2f} {row.unit}, "
            f"ratio {row.ratio:.2f} (goal <= {row.goal_ratio:g})"
        )
