"""The gateway's memory after 100,000 spans carrying 4 KB client-controlled strings, against
the memory reporter's byte bound.

Processes on 127.0.0.1: the upstream (``bench_gateway``'s tiny aiohttp app) and the real
``gatetrace gateway`` CLI, tracing every request (const sampler) into its ``memory``
reporter with ``maxBytes`` = ``BOUND``. This process sends ``REQUESTS`` requests whose path
is 4 KB long (the server and client spans both record it: ``url.path``, ``url.full``), so
``2 x REQUESTS`` = 100,000 spans reach the store. Unbounded, they would take ~1 GB.

It checks that it measured what it claims: the memory reporter exported every span
(``gatetrace_reporter_spans_exported_total``) and dropped none, the store is full but
within its bound (``gatetrace_store_bytes`` between 90% of the bound and the bound, so
the figure is that of a full store) and holds spans, and every request got 200; the whole
run has a deadline (``DEADLINE_S``). The figure is the gateway's RSS growth (``VmRSS``
after, minus the idle gateway's before), which must stay under the bound + 50 MB:
``run()`` returns it as one row against the bound + 50 MB.

Then, with the store full, the proxy's slowest request (probed back to back) while the
query API answers a search returning the whole store, dependencies, stats and a
non-matching search, against its slowest over as long without queries (second row): the
store scans in steps and streams answers in pieces, so queries must not stall the proxy.
"""

import asyncio
import dataclasses
import os
import pathlib
import time

import aiohttp

from benchmarks import bench_gateway, common

REQUESTS = 50_000
BOUND = 64 * 1024 * 1024
SLACK = 50 * 1024 * 1024
CONCURRENCY = 16
LONG = "/api/items/" + "p" * 4096
STALL_GOAL = 3.0
"""The proxy's slowest request during queries may be this many times its slowest without."""
DEADLINE_S = 300.0
"""The whole measurement (start, load, flush) must finish within this."""


def _rss_bytes(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _metric(http: aiohttp.ClientSession, admin: str, prefix: str) -> float:
    async with http.get(admin + "/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    spans: int
    """Spans the memory reporter delivered to the store."""
    idle_rss: int
    after_rss: int
    held: float
    """The store's own estimate of what it holds (``gatetrace_store_bytes``)."""
    quiet_ms: float
    """The proxy's slowest probe request over a spell without queries."""
    busy_ms: float
    """The proxy's slowest probe request while the query API answered from the full store."""
    answered: int
    """Bytes of the query answers read during the busy spell."""


async def _probe(http: aiohttp.ClientSession, proxy: str, until: asyncio.Future[None]) -> float:
    """Request the proxy back to back until ``until`` is done; the slowest, in ms."""
    slowest = 0.0
    while not until.done():
        started = time.perf_counter()
        async with http.get(proxy + "/api/items/1") as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"probe request failed: {response.status}")
        slowest = max(slowest, time.perf_counter() - started)
        await asyncio.sleep(0.002)
    return slowest * 1000


def _query_everything(admin: str, token: str) -> int:
    """In its own thread and loop (reading 60 MB must not slow the probe's loop): the
    services, a search returning the whole store, one trace, dependencies, stats."""

    async def queries() -> int:
        read = 0
        headers = {"Authorization": f"Bearer {token}"}
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            async with http.get(admin + "/api/services") as response:
                service = (await response.json())["data"][0]
            paths = [
                f"/api/traces?service={service}&limit=10000",
                f"/api/dependencies?lookback={24 * 3600 * 1000}",
                f"/api/stats?service={service}&window=24h",
                f"/api/traces?service={service}&limit=10000&minDuration=1us&tag=no:match",
            ]
            for path in paths:
                async with http.get(admin + path) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status}")
                    async for chunk in response.content.iter_chunked(1 << 16):
                        read += len(chunk)
        return read

    return asyncio.run(queries())


async def _stalls(
    http: aiohttp.ClientSession, proxy: str, admin: str, token: str
) -> tuple[float, float, int]:
    loop = asyncio.get_running_loop()
    busy_done: asyncio.Future[None] = loop.create_future()
    querying = loop.run_in_executor(None, _query_everything, admin, token)
    querying.add_done_callback(lambda _: busy_done.set_result(None))
    started = time.monotonic()
    busy = await _probe(http, proxy, busy_done)
    answered = await querying
    spell = time.monotonic() - started
    quiet_done: asyncio.Future[None] = loop.create_future()
    loop.call_later(spell, quiet_done.set_result, None)
    quiet = await _probe(http, proxy, quiet_done)
    return quiet, busy, answered


async def _load(proxy: str, admin: str, pid: int, token: str) -> Figures:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        deadline = time.monotonic() + 20
        while True:
            try:
                async with http.get(proxy + "/api/items/1") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        idle = _rss_bytes(pid)
        sent = 0

        async def worker(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                async with http.get(proxy + LONG) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"request failed: {response.status}")
                sent += 1

        await asyncio.gather(*(worker(REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
        spans = 2 * sent + 2  # and the warm-up request's two
        exported = 0.0
        for _ in range(100):  # the memory reporter flushes every 100 ms
            exported = await _metric(
                http, admin, 'gatetrace_reporter_spans_exported_total{reporter="memory"'
            )
            if exported >= spans:
                break
            await asyncio.sleep(0.1)
        if exported != spans:
            raise RuntimeError(f"{exported:.0f} spans reached the store, expected {spans}")
        dropped = await _metric(
            http, admin, 'gatetrace_reporter_spans_dropped_total{reporter="memory"'
        )
        if dropped:
            raise RuntimeError(f"the memory reporter dropped {dropped:.0f} spans")
        held = await _metric(http, admin, "gatetrace_store_bytes ")
        if held > BOUND:
            raise RuntimeError(f"the store holds {held:.0f} bytes, over its {BOUND} bound")
        if held < 0.9 * BOUND:  # else the figure would be that of a store not yet full
            raise RuntimeError(f"the store holds {held:.0f} bytes, not near its {BOUND} bound")
        if not await _metric(http, admin, "gatetrace_store_spans "):
            raise RuntimeError("the store holds no spans")
        after = _rss_bytes(pid)
        quiet, busy, answered = await _stalls(http, proxy, admin, token)
    return Figures(spans, idle, after, held, quiet, busy, answered)


def measure() -> Figures:
    with bench_gateway.children() as kids:
        upstream = kids.start("upstream")
        tracing = (
            "tracing:\n"
            "  sampling: {sampler: {type: const, decision: true}}\n"
            f"  reporters: [{{type: memory, maxSpans: 10000000, maxBytes: {BOUND}}}]\n"
        )
        with bench_gateway.gateway_cli(upstream, tracing) as gateway:
            return asyncio.run(
                asyncio.wait_for(
                    _load(gateway.proxy, gateway.admin, gateway.pid, gateway.token),
                    DEADLINE_S,
                )
            )


def run() -> list[common.Row]:
    figures = measure()
    mib = 1024 * 1024
    return [
        common.Row(
            f"gateway RSS growth after {figures.spans:,} spans of 4 KB tags "
            f"(maxBytes {BOUND // mib} MiB)",
            (figures.after_rss - figures.idle_rss) / mib,
            (BOUND + SLACK) / mib,
            unit="MiB",
            goal_ratio=1.0,
            peer_name="the byte bound + 50 MB",
        ),
        common.Row(
            f"proxy's slowest request while the query API answers "
            f"{figures.answered / mib:.0f} MiB from the full store",
            figures.busy_ms,
            figures.quiet_ms,
            unit="ms",
            goal_ratio=STALL_GOAL,
            peer_name="the same gateway, as long, without queries",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    started = time.monotonic()
    figures = measure()
    mib = 1024 * 1024
    growth = figures.after_rss - figures.idle_rss
    print(
        f"{figures.spans:,} spans: gateway RSS {figures.idle_rss / mib:.1f} MiB idle -> "
        f"{figures.after_rss / mib:.1f} MiB (growth {growth / mib:.1f} MiB; store estimate "
        f"{figures.held / mib:.1f} MiB; bound {BOUND / mib:.0f} MiB + 50 MB) "
        f"in {time.monotonic() - started:.0f}s\n"
        f"growth / bound = {growth / BOUND:.2f}; growth / (bound + 50 MB) = "
        f"{growth / (BOUND + SLACK):.2f} (goal <= 1)\n"
        f"proxy's slowest request: {figures.busy_ms:.1f} ms while the query API answered "
        f"{figures.answered / mib:.1f} MiB, {figures.quiet_ms:.1f} ms without queries"
    )
