"""Retroactive collection end to end on 127.0.0.1 (see :mod:`embedharness`)."""

import asyncio
from typing import Any

import aiohttp
from aiohttp import web
from embedharness import AUTH, KEPT_CHAIN, path
from tests import loopback

from gatetrace.embed import breadcrumbs


def _by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["spanID"]: s for s in spans}


def _parent(span: dict[str, Any]) -> str | None:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def _kind(span: dict[str, Any]) -> str:
    return next(t["value"] for t in span["tags"] if t["key"] == "span.kind")


async def _eventually_spans(p: Any, trace_id: str, count: int) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for _ in range(150):
        spans = await p.trace(trace_id)
        if len(spans) >= count:
            return spans
        await asyncio.sleep(0.02)
    return spans


async def test_a_kept_error_trace_holds_every_span_of_every_hop_with_its_parent() -> None:
    async with path() as p:
        async with p.http.get(f"{p.gateway.proxy_url}/api/a?fail=1") as response:
            assert response.status == 502
            assert breadcrumbs.HEADER not in response.headers  # never for the client
            trace_id = response.headers["X-Trace-Id"]
        spans = await _eventually_spans(p, trace_id, 6)
        chain = [(s["service"], _kind(s)) for s in sorted(spans, key=lambda s: s["startTime"])]
        assert chain == KEPT_CHAIN
        ordered = sorted(spans, key=lambda s: s["startTime"])
        assert _parent(ordered[0]) is None
        for child, parent in zip(ordered[1:], ordered, strict=False):
            assert _parent(child) == parent["spanID"], (child["operationName"], parent)
        reasons = {
            t["value"] for s in spans for t in s["tags"] if t["key"] == "sampling.priority.reason"
        }
        assert reasons == {"error"}
        # the failing leaf got the trace unsampled, still marked pending
        traceparent = p.leaf_seen[-1]["traceparent"]
        assert traceparent.startswith(f"00-{trace_id}-")
        assert int(traceparent[-2:], 16) & 1 == 0  # sampled=0
        assert "gt=p" in p.leaf_seen[-1]["tracestate"]


async def test_a_healthy_unsampled_request_leaves_nothing_exported() -> None:
    async with path() as p:
        async with p.http.get(f"{p.gateway.proxy_url}/api/a") as response:
            assert response.status == 200
            assert breadcrumbs.HEADER not in response.headers
            trace_id = response.headers["X-Trace-Id"]
        assert len(p.a.buffer) == 2 and len(p.b.buffer) == 2  # buffered, not exported
        await asyncio.sleep(0.3)  # longer than every flush interval
        assert await p.trace(trace_id) == []


async def test_a_client_sent_breadcrumb_is_never_followed_nor_forwarded() -> None:
    calls: list[str] = []

    async def trap(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", trap)
    async with loopback.serving(app) as trap_url, path() as p:
        sent = {breadcrumbs.HEADER: trap_url, "tracestate": "gt=p"}
        async with p.http.get(f"{p.gateway.proxy_url}/api/a?fail=1", headers=sent) as response:
            assert response.status == 502
        await p.gateway.keeper.drain()
        await asyncio.sleep(0.1)
        assert calls == []
        assert breadcrumbs.HEADER not in {k.lower() for k in p.a_seen[-1]}
        assert p.a_seen[-1]["tracestate"] == "gt=p"  # the gateway's own mark, not the client's


async def test_an_address_outside_the_allowed_networks_is_never_called() -> None:
    async with path(allowedNetworks=["10.0.0.0/8"]) as p:
        async with p.http.get(f"{p.gateway.proxy_url}/api/a?fail=1") as response:
            assert response.status == 502
            trace_id = response.headers["X-Trace-Id"]
        await p.gateway.keeper.drain()
        spans = await _eventually_spans(p, trace_id, 2)
        await asyncio.sleep(0.2)
        assert {s["service"] for s in await p.trace(trace_id)} == {"edge"}
        assert len(spans) == 2
        assert len(p.a.buffer) == 2 and len(p.b.buffer) == 2  # never asked: still buffered
        async with p.http.get(f"{p.gateway.admin_url}/metrics") as metrics:
            text = await metrics.text()
        assert 'gatetrace_retro_keeps_total{outcome="refused_network"} 2' in text


async def test_the_keep_endpoint_needs_the_token() -> None:
    async with path() as p:
        url = p.a.address + "/retro/v1/traces/" + "ab" * 16
        async with aiohttp.ClientSession() as http:
            async with http.post(url) as refused:
                assert refused.status == 401
            async with http.post(url, headers={"Authorization": "Bearer nope"}) as wrong:
                assert wrong.status == 401
            async with http.post(url, headers=AUTH, json={"reason": "error"}) as ok:
                assert ok.status == 200
                assert await ok.json() == {"traceId": "ab" * 16, "spans": 0}
            async with http.post(url[:-2] + "zz", headers=AUTH) as bad:
                assert bad.status == 400


async def test_a_services_own_error_keeps_its_buffered_spans_when_the_edge_does_not() -> None:
    own_policy = {
        "sampling": {
            "sampler": {"type": "const", "decision": False},
            "prioritize": {"errors": True, "maxPerSecond": 100},
        },
        "reporters": [{"type": "memory"}],
        "batching": {"flushIntervalMs": 20},
    }
    # the edge only keeps slow requests: the failure is not kept there
    async with path(prioritize={"errors": False, "slowerThanMs": 60_000}, b_config=own_policy) as p:
        async with p.http.get(f"{p.gateway.proxy_url}/api/a?fail=1") as response:
            assert response.status == 502
            trace_id = response.headers["X-Trace-Id"]
        spans = await _eventually_spans(p, trace_id, 2)
        await asyncio.sleep(0.2)
        spans = await p.trace(trace_id)
        assert sorted((s["service"], _kind(s)) for s in spans) == [
            ("svc-b", "client"),
            ("svc-b", "server"),
        ]
        assert len(p.a.buffer) == 2  # the caller's spans stay buffered until they expire


async def test_the_operator_protocol_reaches_a_kit_managed_service() -> None:
    async with path() as p:
        admin = p.a.address
        put = {"revision": 7, "config": {"retro": {"maxBufferBytes": 1 << 20}}}
        async with p.http.put(f"{admin}/admin/v1/tracing", json=put, headers=AUTH) as applied:
            assert applied.status == 200, await applied.text()
        async with p.http.get(f"{admin}/admin/v1/tracing", headers=AUTH) as running:
            body = await running.json()
            assert body["revision"] == 7
            assert body["config"]["retro"]["maxBufferBytes"] == 1 << 20
        assert p.a.buffer.max_bytes == 1 << 20
        bad = {"revision": 8, "config": {"retro": {"allowedNetworks": ["10.0.0.1/8"]}}}
        async with p.http.put(f"{admin}/admin/v1/tracing", json=bad, headers=AUTH) as refused:
            assert refused.status == 422
            errors = (await refused.json())["errors"]
            assert errors[0]["loc"].startswith("config.retro.allowedNetworks")
            assert "not a CIDR network" in errors[0]["msg"]
        assert p.a.holder.current is not None and p.a.holder.current.revision == 7
        for probe, code in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            async with p.http.get(admin + probe) as response:
                assert response.status == code
        async with p.http.get(admin + "/metrics") as response:
            assert "gatetrace_retro_spans_buffered_total" in await response.text()
