"""Sampling limits through a running gateway on 127.0.0.1: debug flags do not bypass the
traces/s cap unless trusted, and the cap bounds the gateway's total over namespace
overrides. Decisions are read from the ``traceparent`` the upstream received."""

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from serverharness import running, settings_for, upstream

from gatetrace.gateway import server

pytestmark = pytest.mark.timeout(60)

DEBUG_HEADERS: dict[str, Mapping[str, str]] = {
    "b3 single d": {"b3": "d"},
    "X-B3-Flags": {"X-B3-TraceId": "{trace}", "X-B3-SpanId": "{span}", "X-B3-Flags": "1"},
    "jaeger-debug-id": {"jaeger-debug-id": "abc"},
    "uber-trace-id debug bit": {"uber-trace-id": "{trace}:{span}:0:3"},
}
EXTRACT = ["tracecontext", "b3", "b3multi", "jaeger"]


def _tracing(**sampling: Any) -> dict[str, Any]:
    return {
        "sampling": {"sampler": {"type": "const", "decision": False}, **sampling},
        "propagation": {"extract": EXTRACT, "inject": ["tracecontext"]},
        "reporters": [{"type": "memory"}],
    }


@contextlib.asynccontextmanager
async def _gateway(
    tracing: dict[str, Any], *, trusted: list[str] | None = None, routes: int = 1
) -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    async with upstream() as up:
        routed = [
            {"name": "users", "prefix": "/api/users", "upstream": up, "namespace": "shop"},
            {"name": "other", "prefix": "/other", "upstream": up, "namespace": "other"},
        ][:routes]
        settings = settings_for(up, routes=routed, trustedProxies=trusted or [], tracing=tracing)
        async with running(settings) as gw:
            yield gw


async def _sampled(
    gw: server.Gateway, http: aiohttp.ClientSession, path: str, headers: Mapping[str, str]
) -> bool:
    trace = "0af7651916cd43dd8448eb211c80319c"
    filled = {k: v.format(trace=trace, span="b7ad6b7169203331") for k, v in headers.items()}
    async with http.get(gw.proxy_url + path, headers=filled) as response:
        assert response.status == 200
        body = await response.json()
    traceparent = {k.lower(): v for k, v in body["headers"].items()}["traceparent"]
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


async def _metric(gw: server.Gateway, http: aiohttp.ClientSession, name: str) -> dict[str, float]:
    async with http.get(gw.admin_url + "/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


@pytest.mark.parametrize("flag", sorted(DEBUG_HEADERS))
async def test_a_debug_flag_counts_against_the_cap_by_default(flag: str) -> None:
    async with _gateway(_tracing(maxTracesPerSecond=1)) as (gw, http):
        kept = [await _sampled(gw, http, "/api/users/1", DEBUG_HEADERS[flag]) for _ in range(30)]
        # the bucket holds one second's worth: one token, plus at most the refill while
        # 30 requests ran on loopback (far under a second each)
        assert 1 <= sum(kept) <= 3, kept
        counted = await _metric(gw, http, "gatetrace_sampling_debug_decisions_total")
        assert counted['gatetrace_sampling_debug_decisions_total{decision="kept"}'] == sum(kept)
        assert counted['gatetrace_sampling_debug_decisions_total{decision="capped"}'] == 30 - sum(
            kept
        )


async def test_trusted_mode_lets_only_trusted_proxies_debug_past_the_cap() -> None:
    tracing = _tracing(maxTracesPerSecond=1, debug="trusted")
    async with _gateway(tracing, trusted=["127.0.0.1/32"]) as (gw, http):
        kept = [await _sampled(gw, http, "/api/users/1", {"b3": "d"}) for _ in range(20)]
        assert all(kept)
    async with _gateway(tracing, trusted=["10.0.0.0/8"]) as (gw, http):  # we are not trusted
        kept = [await _sampled(gw, http, "/api/users/1", {"b3": "d"}) for _ in range(20)]
        assert sum(kept) <= 3


async def test_ignore_mode_leaves_the_decision_to_the_sampler() -> None:
    async with _gateway(_tracing(debug="ignore")) as (gw, http):
        kept = [
            await _sampled(gw, http, "/api/users/1", DEBUG_HEADERS["X-B3-Flags"]) for _ in range(5)
        ]
        assert not any(kept)  # const false decides
        counted = await _metric(gw, http, "gatetrace_sampling_debug_decisions_total")
        assert counted['gatetrace_sampling_debug_decisions_total{decision="ignored"}'] == 5


async def test_the_cap_bounds_the_gateway_total_over_namespace_overrides() -> None:
    tracing = {
        "sampling": {
            "sampler": {"type": "const", "decision": True},
            "maxTracesPerSecond": 2,
            "namespaceOverrides": {"allowed": True},
        },
        "namespaceOverrides": {
            "shop": {"sampling": {"sampler": {"type": "const", "decision": True}}},
            "other": {
                "sampling": {
                    "sampler": {"type": "const", "decision": True},
                    "maxTracesPerSecond": 1,
                }
            },
        },
        "reporters": [{"type": "memory"}],
    }
    async with _gateway(tracing, routes=2) as (gw, http):
        kept = 0
        for _ in range(15):
            kept += await _sampled(gw, http, "/api/users/1", {})
            kept += await _sampled(gw, http, "/other/1", {})
        # one bucket of 2/s for the whole gateway: 2 tokens, plus the refill meanwhile
        assert 2 <= kept <= 4, kept


def _override_cap_tracing(**root: Any) -> dict[str, Any]:
    return {
        "sampling": {
            "sampler": {"type": "const", "decision": False},
            "namespaceOverrides": {"allowed": True},
            **root,
        },
        "namespaceOverrides": {"shop": {"sampling": {"maxTracesPerSecond": 1}}},
        "propagation": {"extract": EXTRACT, "inject": ["tracecontext"]},
        "reporters": [{"type": "memory"}],
    }


@pytest.mark.parametrize("flag", ["b3 single d", "uber-trace-id debug bit"])
async def test_a_debug_flag_counts_against_a_namespace_overrides_own_cap(flag: str) -> None:
    # no gateway-wide cap: the override's own cap is the only limit on its traffic
    async with _gateway(_override_cap_tracing()) as (gw, http):
        kept = [await _sampled(gw, http, "/api/users/1", DEBUG_HEADERS[flag]) for _ in range(20)]
        assert 1 <= sum(kept) <= 3, kept
        counted = await _metric(gw, http, "gatetrace_sampling_debug_decisions_total")
        assert counted['gatetrace_sampling_debug_decisions_total{decision="capped"}'] == 20 - sum(
            kept
        )


async def test_a_debug_flag_counts_against_an_override_cap_within_the_gateway_cap() -> None:
    async with _gateway(_override_cap_tracing(maxTracesPerSecond=50)) as (gw, http):
        kept = [await _sampled(gw, http, "/api/users/1", {"b3": "d"}) for _ in range(20)]
        assert 1 <= sum(kept) <= 3, kept


async def test_trusted_debug_passes_an_overrides_own_cap_too() -> None:
    tracing = _override_cap_tracing(maxTracesPerSecond=1, debug="trusted")
    async with _gateway(tracing, trusted=["127.0.0.1/32"]) as (gw, http):
        kept = [await _sampled(gw, http, "/api/users/1", {"b3": "d"}) for _ in range(10)]
        assert all(kept)
