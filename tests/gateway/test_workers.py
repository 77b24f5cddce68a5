"""A gateway with worker processes (real ``python -m gatetrace.gateway.worker`` children on
127.0.0.1): one revision everywhere, an apply that one worker cannot take changes none,
readiness, merged metrics, spans of every worker in the query API, restarts, draining."""

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from serverharness import ALWAYS, AUTH, TOKEN, settings_for, upstream, wait_for

from gatetrace.gateway import supervisor

pytestmark = pytest.mark.timeout(90)

MEMORY = {
    "sampling": {"sampler": {"type": "const", "decision": True}},
    "batching": {"flushIntervalMs": 20},
    "reporters": [{"type": "memory"}],
}


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


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    """The status and body (JSON when it is JSON, else text) of one request."""
    async with http.request(method, url, **kw) as answer:
        text = await answer.text()
        if answer.content_type == "application/json":
            return answer.status, json.loads(text)
        return answer.status, text


async def put(
    gw: supervisor.Supervisor, http: aiohttp.ClientSession, revision: int, document: Any
) -> tuple[int, Any]:
    body = {"revision": revision, "config": document}
    return await call(http, "PUT", gw.admin_url + "/admin/v1/tracing", json=body, headers=AUTH)


async def get(gw: supervisor.Supervisor, http: aiohttp.ClientSession, path: str) -> Any:
    status, body = await call(http, "GET", gw.admin_url + path, headers=AUTH)
    assert status == 200, body
    return body


async def revisions(gw: supervisor.Supervisor, http: aiohttp.ClientSession) -> list[int]:
    return [w["revision"] for w in (await _workers(gw, http))["workers"]]


async def _workers(gw: supervisor.Supervisor, http: aiohttp.ClientSession) -> dict[str, Any]:
    status, body = await call(http, "GET", gw.admin_url + supervisor.WORKERS_PATH, headers=AUTH)
    assert status == 200
    assert isinstance(body, dict)
    return body


async def _spread(gw: supervisor.Supervisor, count: int) -> None:
    """``count`` requests, each on a new connection (the kernel picks the worker)."""
    for _ in range(count):
        async with aiohttp.ClientSession() as fresh:
            status, _ = await call(fresh, "GET", gw.proxy_url + "/api/users/1")
            assert status == 200


async def test_every_worker_serves_and_runs_the_same_revision() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        body = await _workers(gw, http)
        assert body["revision"] == 0
        pids = {w["pid"] for w in body["workers"]}
        assert len(pids) == 2 and os.getpid() not in pids
        assert all(w["ready"] and w["revision"] == 0 for w in body["workers"])
        # eventLoop: auto, and the test extra installs uvloop
        assert [w["loop"] for w in body["workers"]] == ["uvloop", "uvloop"]
        assert (await call(http, "GET", gw.admin_url + "/readyz"))[0] == 200
        await _spread(gw, 60)
        served = [w["served"] for w in (await _workers(gw, http))["workers"]]
        assert sum(served) == 60
        assert min(served) > 0, f"one worker served everything: {served}"


async def test_a_put_applies_to_every_worker_as_one_revision() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        status, answer = await put(gw, http, 5, MEMORY)
        assert status == 200, answer
        assert await revisions(gw, http) == [5, 5]
        assert (await get(gw, http, "/admin/v1/tracing"))["revision"] == 5
        # invalid: refused by the supervisor before any worker sees it
        status, answer = await put(gw, http, 6, {"sampling": {"sampler": {"type": "nope"}}})
        assert status == 422, answer
        assert await revisions(gw, http) == [5, 5]


async def test_a_worker_that_cannot_prepare_changes_no_worker() -> None:
    async with upstream() as up, supervised(up) as (gw, http):
        stuck = gw.slots[1]
        stuck_pid = stuck.pid
        assert stuck_pid is not None
        os.kill(stuck_pid, signal.SIGSTOP)  # it cannot answer: the apply must not half-land
        try:
            status, answer = await put(gw, http, 7, MEMORY)
            assert status == 503, answer
            assert "worker 1 did not answer in time" in answer["error"]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stuck_pid, signal.SIGCONT)
        assert (await get(gw, http, "/admin/v1/tracing"))["revision"] == 0
        # the hung worker was replaced; the new one runs the revision the others run
        await wait_for(lambda: stuck.ready and stuck.pid != stuck_pid, timeout=20)
        assert await revisions(gw, http) == [0, 0]
        assert (await call(http, "GET", gw.admin_url + "/readyz"))[0] == 200
        status, answer = await put(gw, http, 7, MEMORY)
        assert status == 200, answer
        assert await revisions(gw, http) == [7, 7]


async def test_a_dead_worker_is_restarted_with_the_running_config() -> None:
    async with upstream() as up, supervised(up, tracing=MEMORY) as (gw, http):
        status, answer = await put(gw, http, 3, MEMORY)
        assert status == 200, answer
        victim = gw.slots[0]
        old_pid = victim.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        await wait_for(lambda: not victim.ready, timeout=10)
        status, answer = await call(http, "GET", gw.admin_url + "/readyz")
        assert status == 503
        assert "worker(s) 0 not serving" in answer["reason"]
        await wait_for(lambda: victim.ready, timeout=20)
        assert victim.pid != old_pid
        assert await revisions(gw, http) == [3, 3]
        _, metrics = await call(http, "GET", gw.admin_url + "/metrics")
        assert 'gatetrace_worker_restarts_total{worker="0"} 1' in metrics
        assert 'gatetrace_worker_up{worker="0"} 1' in metrics


def _samples(text: str) -> dict[str, str]:
    return {
        line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_metrics_are_the_sum_of_the_workers_and_spans_reach_the_store() -> None:
    async with upstream() as up, supervised(up, tracing=MEMORY) as (gw, http):
        await _spread(gw, 40)
        served = [w["served"] for w in (await _workers(gw, http))["workers"]]
        assert min(served) > 0, served
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        samples = _samples(text)
        assert samples['gatetrace_gateway_requests_total{route="users",code="200"}'] == "40"
        assert samples['gatetrace_gateway_request_duration_seconds_count{route="users"}'] == "40"
        assert samples["gatetrace_config_revision"] == "0"  # the supervisor's, not summed
        assert samples["gatetrace_workers"] == "2"
        # two spans a request, shipped by both workers into the supervisor's store
        await wait_for(lambda: len(gw.store) >= 80, timeout=10)
        assert len(gw.store) == 80
        _, found = await call(
            http,
            "GET",
            gw.admin_url + "/api/traces",
            params={"service": "edge", "limit": "100"},
            headers=AUTH,
        )
        assert len(found["data"]) == 40
        _, text = await call(http, "GET", gw.admin_url + "/metrics")
        samples = _samples(text)
        assert samples["gatetrace_worker_spans_received_total"] == "80"
        assert samples["gatetrace_worker_spans_shipped_total"] == "80"


async def test_stopping_drains_in_flight_requests_in_every_worker() -> None:
    arrived = asyncio.Event()
    async with upstream(delay=1.0, arrived=arrived) as up:
        settings = settings_for(up, workers=2, tracing=MEMORY)
        gw = supervisor.Supervisor(settings, token=TOKEN, drain_seconds=0.2)
        await gw.start()
        pids = [slot.pid for slot in gw.slots]
        async with aiohttp.ClientSession() as http:
            slow = asyncio.ensure_future(call(http, "GET", gw.proxy_url + "/api/users/slow"))
            await asyncio.wait_for(arrived.wait(), 10)
            await gw.stop(5.0)
            status, _ = await slow
            assert status == 200
            # its spans were flushed by the worker and stored before the supervisor stopped
            assert len(gw.store) == 2
        for pid in pids:
            assert pid is not None
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


async def test_workers_run_on_asyncio_s_loop_when_the_config_says_so() -> None:
    async with upstream() as up, supervised(up, eventLoop="asyncio") as (gw, http):
        body = await _workers(gw, http)
        assert [w["loop"] for w in body["workers"]] == ["asyncio", "asyncio"]
        await _spread(gw, 20)
        status, answer = await put(gw, http, 2, MEMORY)
        assert status == 200, answer
        assert await revisions(gw, http) == [2, 2]
        await _spread(gw, 10)
        # the bootstrap config's default reporter is the store too: every request's spans
        await wait_for(lambda: len(gw.store) >= 60, timeout=10)
        await asyncio.sleep(0.2)
        assert len(gw.store) == 60
