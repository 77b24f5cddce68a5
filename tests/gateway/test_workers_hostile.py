"""Hostile tests of the gateway's worker processes: racing applies, workers that hang or
die at the worst moment, a stop during a restart, metrics and admin calls while a worker
is stopped, a crash loop, huge spans on the shipping channel. Real worker processes on
127.0.0.1; the only thing the tests add is the timing (a signal sent between two steps)."""

import asyncio
import contextlib
import http.client
import http.server
import json
import os
import pathlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import aiohttp
import pytest
from serverharness import ALWAYS, AUTH, TOKEN, settings_for, upstream, wait_for
from test_workers import MEMORY, call, get, put, revisions, supervised

from gatetrace.gateway import server, supervisor, worker, worker_channel
from gatetrace.runtime import metrics, span, spancontext

pytestmark = pytest.mark.timeout(90)


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
        replaced = gw.slots[0]
        await wait_for(lambda: replaced.ready and replaced.pid != victim, timeout=20)
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


async def test_a_commit_to_a_worker_that_died_spares_its_replacement() -> None:
    """A worker dies after preparing and its replacement is already starting (it waits for
    the config lock) when the commit finds the dead one: the replacement is left to start."""
    async with upstream() as up, supervised(up) as (gw, http):
        slot = gw.slots[0]
        old = slot.pid
        original = gw.commit_everywhere
        seen: list[int] = []

        async def commit(slots: Sequence[supervisor.WorkerSlot], revision: int) -> None:
            _kill(old)
            await wait_for(lambda: slot.process is not None and slot.process.pid != old, 10)
            assert slot.process is not None
            seen.append(slot.process.pid)
            await original(slots, revision)

        gw.commit_everywhere = commit  # type: ignore[method-assign]
        status, answer = await put(gw, http, 4, MEMORY)
        assert status == 200, answer
        await wait_for(lambda: slot.ready, timeout=20)
        assert slot.pid == seen[0]
        assert await revisions(gw, http) == [4, 4]
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        assert 'gatetrace_worker_restarts_total{worker="0"} 1' in text


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
            # once reaped, the reason says how it ended
            await wait_for(
                lambda p=pid: slot.last_exit is not None and f"pid {p}" in slot.last_exit, 10
            )
            status, answer = await call(http, "GET", gw.admin_url + "/readyz")
            if status == 503:  # (unless its replacement is serving already)
                assert f"worker 0: pid {pid} exited with signal SIGKILL" in answer["reason"]
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


def _flood(port: int, until: float, headers: dict[str, str]) -> int:
    """Requests on one keep-alive connection until ``until``; how many were answered."""
    answered = 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        while time.monotonic() < until:
            connection.request("GET", f"/api/users/{answered}", headers=headers)
            answer = connection.getresponse()
            answer.read()
            answered += 1
            if answer.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    finally:
        connection.close()
    return answered


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        # one write: headers and body apart would wait for a delayed ACK each time
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def _thread_upstream() -> Iterator[str]:
    """An upstream on threads of its own: it answers while the test's loop is blocked."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _rss_bytes(pid: int | None) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.timeout(120)
async def test_a_flood_of_huge_spans_while_the_supervisor_is_busy_is_refused_and_counted() -> None:
    """The supervisor's loop stops reading (a long synchronous step) while both workers
    record spans at the tag limits: the workers refuse batches beyond the shipping backlog
    and count them, nothing shipped is lost, the store keeps its byte bound, the workers'
    memory stays bounded, and the supervisor answers again right after."""
    names = [f"X-Big-{k}" for k in range(8)]
    tracing = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "headerTags": [{"header": name, "tag": name.lower()} for name in names],
        "reporters": [{"type": "memory", "maxBytes": 8 << 20}],
    }
    headers = {name: chr(97 + k) * 5000 for k, name in enumerate(names)}  # cut to 4096
    with _thread_upstream() as up:
        await _flood_while_busy(up, tracing, headers)


async def _flood_while_busy(up: str, tracing: dict[str, Any], headers: dict[str, str]) -> None:
    async with supervised(up, tracing=tracing) as (gw, http):
        assert gw.proxy_address is not None
        port = gw.proxy_address[1]
        until = time.monotonic() + 6.0
        floods = [asyncio.ensure_future(asyncio.to_thread(_flood, port, until, headers))]
        floods.append(asyncio.ensure_future(asyncio.to_thread(_flood, port, until, headers)))
        await asyncio.sleep(0.5)
        time.sleep(5.0)  # noqa: ASYNC251 -- the supervisor's loop is busy: nobody reads spans
        answered = sum(await asyncio.gather(*floods))
        assert answered > 100
        began = time.monotonic()
        status, text = await call(http, "GET", gw.admin_url + "/metrics")
        assert status == 200 and time.monotonic() - began < 5.0
        for slot in gw.slots:
            assert _rss_bytes(slot.pid) < 400 << 20

        def settled() -> bool:
            return gw._received.total() >= _counts(text)["shipped"]

        await asyncio.sleep(1.0)
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        await wait_for(settled, timeout=20)
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        counts = _counts(text)
        assert counts["refused"] > 0, counts  # the backlog bound was reached, and counted
        assert counts["received"] == counts["shipped"], counts
        assert gw.store.max_bytes == 8 << 20
        assert gw.store.bytes <= gw.store.max_bytes


def _counts(text: str) -> dict[str, float]:
    found = {"shipped": 0.0, "refused": 0.0, "received": 0.0}
    names = {
        "gatetrace_worker_spans_shipped_total": "shipped",
        "gatetrace_worker_spans_ship_refused_total": "refused",
        "gatetrace_worker_spans_received_total": "received",
    }
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            found[names[name]] += float(value)
    return found


@pytest.mark.timeout(90)
@pytest.mark.parametrize("group", [False, True], ids=["supervisor", "process-group"])
async def test_sigterm_to_the_cli_gateway_drains_and_restarts_nothing(
    tmp_path: pathlib.Path, group: bool
) -> None:
    """SIGTERM to the supervisor (Kubernetes) or to the whole process group (a shell, a
    process manager): requests in flight finish, the exit is 0, no worker is started again
    on the way out and none is left."""
    arrived = asyncio.Event()
    async with upstream(delay=1.0, arrived=arrived) as up:
        cfg = tmp_path / "gateway.yaml"
        cfg.write_text(
            json.dumps(
                {
                    "service": "edge",
                    "listen": "127.0.0.1:0",
                    "admin": {"listen": "127.0.0.1:0"},
                    "routes": [{"name": "users", "prefix": "/", "upstream": up}],
                    "tracing": MEMORY,
                    "workers": 2,
                }
            )
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gatetrace.cli",
            "gateway",
            "--config",
            str(cfg),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GATETRACE_ADMIN_TOKEN": TOKEN},
            start_new_session=True,
        )
        sessions = [aiohttp.ClientSession() for _ in range(6)]
        try:
            assert proc.stdout is not None and proc.stderr is not None
            urls: dict[str, str] = {}
            while len(urls) < 2:
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
                assert line, "the gateway exited before announcing its addresses"
                key, _, url = line.partition(": ")
                urls[key] = url
            pids = [w["pid"] for w in (await get_at(sessions[0], urls["admin"]))["workers"]]
            slow = [
                asyncio.ensure_future(call(s, "GET", urls["gateway"] + f"/slow{i}"))
                for i, s in enumerate(sessions)
            ]
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.2)
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
            results = await asyncio.wait_for(asyncio.gather(*slow), 20)
            assert [status for status, _ in results] == [200] * 6
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            errors = (await proc.stderr.read()).decode()
            assert "starting it again" not in errors, errors
            for pid in pids:
                assert not _alive(pid)
        finally:
            for s in sessions:
                await s.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def get_at(http: aiohttp.ClientSession, admin: str) -> Any:
    status, body = await call(http, "GET", admin + supervisor.WORKERS_PATH, headers=AUTH)
    assert status == 200, body
    return body


async def test_a_per_pod_traces_per_second_holds_for_the_pod_not_each_worker() -> None:
    """``sampling.rateScope: pod`` (the default) documents every traces/s field as the
    pod's; the README says only ``connections`` limits apply per worker. Each worker runs
    its own token bucket, so the supervisor gives each its share (failed before: 8-9 traces
    in 4 s with two workers)."""
    tracing = {
        "sampling": {"sampler": {"type": "rateLimiting", "tracesPerSecond": 1}},
        "batching": {"flushIntervalMs": 20},
        "reporters": [{"type": "memory"}],
    }
    async with upstream() as up, supervised(up, tracing=tracing) as (gw, http):
        # keep-alive connections opened at once: the kernel hands them to both workers
        sessions: list[aiohttp.ClientSession] = []
        try:
            url = gw.proxy_url + "/api/users/1"
            while len(sessions) < 32:
                more = [aiohttp.ClientSession() for _ in range(4)]
                sessions += more
                await asyncio.gather(*(call(s, "GET", url) for s in more))
                workers = (await get(gw, http, supervisor.WORKERS_PATH))["workers"]
                if min(w["served"] for w in workers) > 0:
                    break
            began = time.monotonic()
            while time.monotonic() - began < 4.0:  # ~25 requests a second over 4 s
                for s in sessions[-8:]:
                    status, _ = await call(s, "GET", url)
                    assert status == 200
                    await asyncio.sleep(0.04)
        finally:
            for s in sessions:
                await s.close()
        elapsed = time.monotonic() - began
        served = [w["served"] for w in (await get(gw, http, supervisor.WORKERS_PATH))["workers"]]
        assert min(served) > 10, served  # both workers took traffic all along
        await asyncio.sleep(0.5)
        _, found = await call(
            http,
            "GET",
            gw.admin_url + "/api/traces",
            params={"service": "edge", "limit": "1000"},
            headers=AUTH,
        )
        sampled = len(found["data"])
        # one token to start with, then one a second (and one of slack)
        assert sampled <= 1 + elapsed + 1, (sampled, elapsed, served)


async def test_a_worker_failing_at_start_fails_the_start_and_leaves_no_worker_running(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 1 exits (code 3) before it says hello: start() fails naming it, and worker 0,
    started and serving by then, is stopped too (nothing left listening or running)."""
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\ncase " $* " in *" --index 1 "*) exit 3;; esac\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    monkeypatch.setattr(supervisor.sys, "executable", str(python))
    async with upstream() as up:
        settings = settings_for(up, workers=2, tracing=ALWAYS)
        gw = supervisor.Supervisor(settings, token=TOKEN, drain_seconds=0.2, apply_timeout=3.0)
        with pytest.raises(server.StartupError, match="worker 1"):
            await gw.start()
        first = gw.slots[0].process
        assert first is not None and first.returncode is not None  # reaped
        assert not _alive(first.pid)
        assert gw.proxy_address is not None
        with pytest.raises(ConnectionRefusedError):  # nobody accepts on the proxy port any more
            socket.create_connection(gw.proxy_address, timeout=2).close()
