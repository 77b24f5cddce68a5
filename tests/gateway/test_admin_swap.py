"""Live config swaps under concurrent proxy load: no request fails, and each request
runs with exactly one config from start to end (its injected format, its span's tags)."""

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from serverharness import AUTH, TOKEN, settings_for, upstream, wait_for

from gatetrace.gateway import server
from gatetrace.runtime import ids

pytestmark = pytest.mark.timeout(90)

CONCURRENCY = 16
DURATION = 2.0


def _config(revision: int) -> dict[str, Any]:
    odd = revision % 2 == 1
    return {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "propagation": {
            "extract": ["tracecontext", "b3multi"],
            "inject": ["tracecontext"] if odd else ["b3multi"],
        },
        "tags": {"cfg": "odd" if odd else "even"},
        "reporters": [{"type": "memory"}],
        "batching": {"flushIntervalMs": 20},
    }


async def test_swaps_under_load_never_fail_or_mix_configs() -> None:
    async with upstream(delay=0.005) as up:
        gw = server.Gateway(settings_for(up, tracing=_config(1)), token=TOKEN, drain_seconds=1.0)
        await gw.start()
        outcomes: list[tuple[int, str, str]] = []  # (status, trace id header, injected format)
        failures: list[str] = []
        revisions = [0]
        deadline = time.monotonic() + DURATION
        try:
            connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
            async with aiohttp.ClientSession(connector=connector) as http:

                async def client(n: int) -> None:
                    while time.monotonic() < deadline:
                        try:
                            async with http.get(f"{gw.proxy_url}/api/users/{n}") as response:
                                body = await response.json()
                                headers = {k.lower(): v for k, v in body["headers"].items()}
                                has_w3c = "traceparent" in headers
                                has_b3 = "x-b3-traceid" in headers
                                if has_w3c == has_b3:
                                    failures.append(f"mixed or missing formats: {headers}")
                                    continue
                                injected = (
                                    headers["traceparent"].split("-")[1]
                                    if has_w3c
                                    else headers["x-b3-traceid"]
                                )
                                trace_id = response.headers["X-Trace-Id"]
                                if injected != trace_id:
                                    failures.append(f"{injected} != {trace_id}")
                                outcomes.append(
                                    (response.status, trace_id, "w3c" if has_w3c else "b3")
                                )
                        except aiohttp.ClientError as e:
                            failures.append(repr(e))

                async def swapper() -> None:
                    revision = 1
                    while time.monotonic() < deadline:
                        revision += 1
                        response = await http.put(
                            gw.admin_url + "/admin/v1/tracing",
                            json={"revision": revision, "config": _config(revision)},
                            headers=AUTH,
                        )
                        if response.status != 200:
                            failures.append(f"PUT {revision}: {response.status}")
                        revisions[0] = revision
                        await asyncio.sleep(0.03)

                await asyncio.gather(swapper(), *(client(n) for n in range(CONCURRENCY)))
        finally:
            await asyncio.sleep(0.1)
            await gw.stop(5.0)

        assert not failures, failures[:5]
        assert revisions[0] >= 5, "too few swaps happened during the load"
        assert len(outcomes) >= 50, "too few requests to say anything"
        assert {status for status, _, _ in outcomes} == {200}
        assert {fmt for _, _, fmt in outcomes} == {"w3c", "b3"}

        # Each request's spans carry the tags of the config whose format it injected.
        checked = 0
        for _, trace_hex, fmt in outcomes:
            trace_id = ids.parse_trace_id(trace_hex)
            assert trace_id is not None
            spans = gw.store.trace(trace_id)
            if not spans:
                continue
            expected = "odd" if fmt == "w3c" else "even"
            for span in spans:
                assert ("cfg", expected) in span.resource.tags, (fmt, span.resource.tags)
            assert len(spans) == 2
            checked += 1
        assert checked >= len(outcomes) * 0.8


async def test_swap_takes_effect_for_the_next_request() -> None:
    async with upstream() as up:
        gw = server.Gateway(settings_for(up, tracing=_config(1)), token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                first = await (await http.get(gw.proxy_url + "/api/users/1")).json()
                assert "traceparent" in {k.lower() for k in first["headers"]}
                put = await http.put(
                    gw.admin_url + "/admin/v1/tracing",
                    json={"revision": 2, "config": _config(2)},
                    headers=AUTH,
                )
                assert put.status == 200
                second = await (await http.get(gw.proxy_url + "/api/users/1")).json()
                lowered = {k.lower() for k in second["headers"]}
                assert "x-b3-traceid" in lowered
                assert "traceparent" not in lowered
                await wait_for(lambda: gw.applier.retiring() == 0, timeout=10)
        finally:
            await gw.stop(2.0)
