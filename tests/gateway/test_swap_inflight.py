"""A tracing config swap under a running gateway on 127.0.0.1: a request that started
before the swap keeps its spans (they reach the old config's reporter, which closes
once that request has ended), and a reporter the new config drops leaves /metrics."""

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from serverharness import AUTH, TOKEN, collector, settings_for, upstream, wait_for

from gatetrace.gateway import server

pytestmark = pytest.mark.timeout(60)


def _config(endpoint: str) -> dict[str, Any]:
    return {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [{"type": "zipkin", "endpoint": endpoint, "gzip": False}],
        "batching": {"flushIntervalMs": 50},
    }


async def _metrics(http: aiohttp.ClientSession, gw: server.Gateway) -> str:
    async with http.get(gw.admin_url + "/metrics") as response:
        return await response.text()


async def test_a_request_in_flight_keeps_its_spans_across_a_swap() -> None:
    arrived = asyncio.Event()
    async with (
        upstream(delay=2.5, arrived=arrived) as up,
        collector() as (old_url, old_spans),
        collector() as (new_url, new_spans),
    ):
        gw = server.Gateway(settings_for(up, tracing=_config(old_url)), token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH) as http:
                slow = asyncio.create_task(http.get(gw.proxy_url + "/api/users/slow"))
                await asyncio.wait_for(arrived.wait(), 10)
                body = {"revision": 1, "config": _config(new_url)}
                async with http.put(gw.admin_url + "/admin/v1/tracing", json=body) as put:
                    assert put.status == 200
                assert gw.applier.retiring() == 1  # waiting for the slow request
                started = time.monotonic()
                async with await slow as response:
                    assert response.status == 200
                await wait_for(lambda: len(old_spans) == 2)
                await wait_for(lambda: gw.applier.retiring() == 0)
                assert time.monotonic() - started < 5  # retired right after, not at a timer
                names = sorted(s["kind"] for s in old_spans)
                assert names == ["CLIENT", "SERVER"]
                assert new_spans == []
                text = await _metrics(http, gw)
                dropped = [
                    line
                    for line in text.splitlines()
                    if line.startswith("gatetrace_reporter_spans_dropped_total")
                    and not line.endswith(" 0")
                ]
                assert dropped == []
        finally:
            await gw.stop(2.0)


async def test_the_grace_bounds_the_wait() -> None:
    arrived = asyncio.Event()
    async with upstream(delay=3.0, arrived=arrived) as up, collector() as (url, _):
        gw = server.Gateway(settings_for(up, tracing=_config(url)), token=TOKEN, drain_seconds=0.5)
        await gw.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH) as http:
                slow = asyncio.create_task(http.get(gw.proxy_url + "/api/users/slow"))
                await asyncio.wait_for(arrived.wait(), 10)
                body = {"revision": 1, "config": {"reporters": [{"type": "memory"}]}}
                async with http.put(gw.admin_url + "/admin/v1/tracing", json=body) as put:
                    assert put.status == 200
                await wait_for(lambda: gw.applier.retiring() == 0, timeout=3.0)
                async with await slow as response:
                    assert response.status == 200
        finally:
            await gw.stop(2.0)


async def test_a_removed_reporter_leaves_metrics() -> None:
    async with upstream() as up, collector() as (url, spans):
        gw = server.Gateway(settings_for(up, tracing=_config(url)), token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession(headers=AUTH) as http:
                async with http.get(gw.proxy_url + "/api/users/1") as response:
                    assert response.status == 200
                await wait_for(lambda: len(spans) == 2)
                assert 'reporter="zipkin"' in await _metrics(http, gw)
                body = {"revision": 1, "config": {"reporters": [{"type": "memory"}]}}
                async with http.put(gw.admin_url + "/admin/v1/tracing", json=body) as put:
                    assert put.status == 200
                await wait_for(lambda: gw.applier.retiring() == 0)
                text = await _metrics(http, gw)
                assert 'reporter="zipkin"' not in text
                assert 'reporter="memory"' in text
        finally:
            await gw.stop(2.0)
