"""Hostile tests of the gateway's worker processes: racing applies, workers that hang or
die at the worst moment, a stop during a restart, metrics and admin calls while a worker
is stopped, a crash loop, huge spans on the shipping channel. Real worker processes on
127.0.0.1; the only thing the tests add is the timing (a signal sent between two steps)."""

import asyncio
import contextlib
import os
import pathlib
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import pytest
from serverharness import ALWAYS, AUTH, TOKEN, settings_for, upstream, wait_for
from test_workers import MEMORY, call, get, put, revisions

from gatetrace.gateway import supervisor, worker, worker_channel
from gatetrace.runtime import metrics, span, spancontext

pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def supervised(
    up: str, tracing: dict[str, Any] | None = None, **extra: Any
) -> AsyncIterator[tuple[supervisor.Supervisor, aiohttp.ClientSession]]:
    settings = settings_for(up, workers=2, tracing=tracing or ALWAYS, **extra)
    gw = supervisor.Supervisor(settings, token=TOKEN, drain_seconds=0.2, apply_timeout=3.0)
    await gw.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield gw, http
    finally:
        for slot in gw.slots:  # never leave a stopped process behind
            if slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGCONT)
        await gw.stop(5.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int | None) -> bytes:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()


def _kill(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _between_prepare_and_commit(
    gw: supervisor.Supervisor, step: Callable[[], None]
) -> Callable[[Sequence[supervisor.WorkerSlot], int], Awaitable[None]]:
    """``gw.commit_everywhere`` running ``step`` first (once): every worker has prepared."""
    original = gw.commit_everywhere
    done = False

    async def commit(slots: Sequence[supervisor.WorkerSlot], revision: int) -> None:
        nonlocal done
        if not done:
            done = True
            step()
        await original(slots, revision)

    return commit


def _doc(revision: int) -> dict[str, Any]:
    return {**MEMORY, "tags": {"rev": str(revision)}}


async def test_racing_puts_end_with_every_worker_at_the_revision_get_reports() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        outcomes = await asyncio.gather(*(put(gw, http, r, _doc(r)) for r in range(1, 13)))
        statuses = [status for status, _ in outcomes]
        assert set(statuses) <= {200, 409}, outcomes
        assert 200 in statuses
        running = (await get(gw, http, "/admin/v1/tracing"))["revision"]
        assert running == max(
            r for r, (s, _) in zip(range(1, 13), outcomes, strict=True) if s == 200
        )
        assert await revisions(gw, http) == [running, running]
        # and again with a worker dying in the middle of the storm
        victim = gw.slots[0].pid
        tasks = [asyncio.ensure_future(put(gw, http, r, _doc(r))) for r in range(20, 30)]
        await asyncio.sleep(0.05)
        _kill(victim)
        outcomes = await asyncio.gather(*tasks)
        assert {status for status, _ in outcomes} <= {200, 409, 503}, outcomes
        await wait_for(lambda: all(s.ready for s in gw.slots), timeout=20)
        running = (await get(gw, http, "/admin/v1/tracing"))["revision"]
        assert await revisions(gw, http) == [running, running]
        assert (await call(http, "GET", gw.admin_url + "/readyz"))[0] == 200


async def test_a_worker_killed_between_prepare_and_commit_starts_at_the_new_revision() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        slot = gw.slots[1]
        old = slot.pid
        gw.commit_everywhere = _between_prepare_and_commit(gw, lambda: _kill(old))  # type: ignore[method-assign]
        status, answer = await put(gw, http, 4, MEMORY)
        assert status == 200, answer
        await wait_for(lambda: slot.ready and slot.pid != old, timeout=20)
        assert await revisions(gw, http) == [4, 4]


async def test_a_worker_hung_at_commit_is_replaced_not_left_on_the_old_revision() -> None:
    """200 means every worker runs the revision: a worker that does not answer the commit
    must be treated as the README says of a hung worker (killed, started again with the
    running config), not left on the old revision while the supervisor reports ready."""
    async with upstream() as up, supervised(up) as (gw, http):
        slot = gw.slots[1]
        hung = slot.pid
        assert hung is not None
        step = _between_prepare_and_commit(gw, lambda: _kill(hung, signal.SIGSTOP))
        gw.commit_everywhere = step  # type: ignore[method-assign]
        try:
            status, answer = await put(gw, http, 4, MEMORY)
            assert status == 200, answer
            await wait_for(lambda: slot.ready and slot.pid != hung, timeout=20)
            assert await revisions(gw, http) == [4, 4]
        finally:
            _kill(hung, signal.SIGCONT)


async def test_a_put_during_a_stuck_worker_start_answers_within_the_apply_timeout() -> None:
    """A restarting worker that never says ready must not hold every PUT for START_TIMEOUT
    (120 s): the README promises an answer (200 or 503) within the apply timeout."""
    async with upstream() as up, supervised(up) as (gw, http):
        slot = gw.slots[0]
        first = slot.pid
        _kill(first)
        await wait_for(lambda: slot.process is not None and slot.process.pid != first, timeout=10)
        assert slot.process is not None
        stuck = slot.process.pid
        _kill(stuck, signal.SIGSTOP)  # started, never ready
        try:
            began = time.monotonic()
            status, answer = await asyncio.wait_for(put(gw, http, 5, MEMORY), 12.0)
            assert status in (200, 503), answer
            assert time.monotonic() - began < 10.0
            # the running worker answers GET /admin/v1/tracing's revision
            running = (await get(gw, http, "/admin/v1/tracing"))["revision"]
            assert [w["revision"] for w in (await _workers(gw, http))][1] == running
        finally:
            _kill(stuck)
        await wait_for(lambda: slot.ready, timeout=30)
        running = (await get(gw, http, "/admin/v1/tracing"))["revision"]
        assert await revisions(gw, http) == [running, running]


async def _workers(gw: supervisor.Supervisor, http: aiohttp.ClientSession) -> list[Any]:
    body = await get(gw, http, supervisor.WORKERS_PATH)
    return list(body["workers"])


async def test_stopping_during_a_restart_leaves_no_worker_behind() -> None:
    async with upstream() as up:
        settings = settings_for(up, workers=2, tracing=ALWAYS)
        gw = supervisor.Supervisor(settings, token=TOKEN, drain_seconds=0.2, apply_timeout=3.0)
        await gw.start()
        slot = gw.slots[0]
        first = slot.pid
        port = gw.proxy_address[1] if gw.proxy_address else 0
        spawned: int | None = None
        try:
            _kill(first)
            await wait_for(
                lambda: slot.process is not None and slot.process.pid != first, timeout=10
            )
            assert slot.process is not None
            spawned = slot.process.pid
            assert not slot.ready  # still importing: the restart is in its _spawn
        finally:
            await gw.stop(5.0)
        assert spawned is not None
        try:
            assert not _alive(spawned), "stop() returned with a starting worker still running"
        finally:
            _kill(spawned)
        # nobody accepts on the proxy port any more
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), 1),
        ):
            pass


async def test_metrics_workers_and_tracing_answer_while_a_worker_is_stopped() -> None:
    async with upstream() as up, supervised(up, tracing=MEMORY) as (gw, http):
        hung = gw.slots[1].pid
        _kill(hung, signal.SIGSTOP)
        try:
            began = time.monotonic()
            status, text = await call(http, "GET", gw.admin_url + "/metrics")
            assert status == 200
            assert "gatetrace_workers 2" in text
            body = await get(gw, http, supervisor.WORKERS_PATH)
            assert body["workers"][1]["ready"] is False
            assert body["workers"][0]["revision"] == 0
            # a PUT stuck on the hung worker does not block GET /admin/v1/tracing
            pending = asyncio.ensure_future(put(gw, http, 3, MEMORY))
            await asyncio.sleep(0.3)
            assert (await get(gw, http, "/admin/v1/tracing"))["revision"] == 0
            status, answer = await pending
            assert status == 503, answer
            assert time.monotonic() - began < 20
        finally:
            _kill(hung, signal.SIGCONT)


async def test_admin_workers_needs_the_token_and_does_not_show_it() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            status, _ = await call(
                http, "GET", gw.admin_url + supervisor.WORKERS_PATH, headers=headers
            )
            assert status == 401
        status, body = await call(http, "GET", gw.admin_url + supervisor.WORKERS_PATH, headers=AUTH)
        assert status == 200
        assert TOKEN not in str(body)
        # nor is it on a worker's command line
        for slot in gw.slots:
            cmdline = _cmdline(slot.pid)
            assert TOKEN.encode() not in cmdline


async def test_a_crash_loop_backs_off_and_readyz_names_the_worker() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        slot = gw.slots[0]
        gaps: list[float] = []
        for _ in range(4):
            await wait_for(lambda: slot.ready, timeout=30)
            pid = slot.pid
            _kill(pid)
            died = time.monotonic()
            await wait_for(lambda: not slot.ready, timeout=10)
            status, answer = await call(http, "GET", gw.admin_url + "/readyz")
            assert status == 503
            assert "worker(s) 0" in answer["reason"]
            await wait_for(lambda p=pid: slot.process is not None and slot.process.pid != p, 30)
            gaps.append(time.monotonic() - died)
        # 0.5, 1, 2, 4 s before each new process
        assert gaps[-1] > 3.0 and gaps[0] < 2.0, gaps
        assert gaps == sorted(gaps), gaps
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        assert 'gatetrace_worker_restarts_total{worker="0"} 4' in text


async def test_stopping_drains_in_flight_requests_of_both_workers() -> None:
    arrived = asyncio.Event()
    async with upstream(delay=1.5, arrived=arrived) as up:
        settings = settings_for(up, workers=2, tracing=MEMORY)
        gw = supervisor.Supervisor(settings, token=TOKEN, drain_seconds=0.2)
        await gw.start()
        sessions = [aiohttp.ClientSession() for _ in range(8)]
        try:
            slow = [
                asyncio.ensure_future(call(s, "GET", gw.proxy_url + f"/api/users/slow{i}"))
                for i, s in enumerate(sessions)
            ]
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.3)
            await gw.stop(5.0)
            results = await asyncio.gather(*slow)
            assert [status for status, _ in results] == [200] * 8
            assert len(gw.store) == 16
        finally:
            for s in sessions:
                await s.close()


def _huge_span(i: int) -> span.Span:
    """A finished span at the tag limits a client can reach (64 header tags of 4096 chars)."""
    s = span.Span.restored(
        spancontext.SpanContext(i + 1, i + 1, True),
        "GET",
        span.SpanKind.SERVER,
        None,
        span.Resource("edge", (), ""),
        1,
        2,
        {f"h{k}": chr(65 + k % 26) * 4096 for k in range(64)},
        [],
        span.Status(),
        (),
        True,
    )
    return s


async def test_a_batch_too_big_for_one_frame_is_refused_and_counted_as_such() -> None:
    """A batch of spans at the tag limits can exceed MAX_FRAME_BYTES: the sink must count
    it as refused for the store (``gatetrace_worker_spans_ship_refused``), not raise a
    ValueError the exporter reports as an unexplained export failure."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    channel = await worker_channel.Channel.open(ours)
    try:
        registry = metrics.Registry()
        sink = worker.ShippingSink(channel, registry)
        spans = [_huge_span(i) for i in range(300)]  # ~80 MiB pickled
        refused = sink.add(spans)
        assert refused == {"shipping": 300}
        counter = registry.counter("gatetrace_worker_spans_ship_refused", "")
        assert counter.total() == 300
    finally:
        channel.close()
        theirs.close()
        await asyncio.sleep(0)
