"""Scenario 12: a trace kept retroactively, read back from the real Jaeger.

The retro chain of the unit suite (tests/embed/embedharness.py: client -> gateway ->
aiohttp service with the kit -> FastAPI service under uvicorn with the kit -> failing
leaf), every hop sending to the real Jaeger collector (thrift over HTTP) besides its
memory store. Nothing is sampled up front; the leaf's 503 makes the gateway keep the
trace and pull the services' buffered spans. Jaeger must hold every span of every hop
with its parent; a healthy request sent first must never reach Jaeger.
"""

import asyncio
from typing import Any

import pytest
from peers import servers
from tests.embed import embedharness

pytestmark = pytest.mark.e2e


def _parent(span: dict[str, Any]) -> str | None:
    refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def _tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


async def _jaeger_spans(jaeger: servers.Jaeger, trace_id: str, count: int) -> dict[str, Any]:
    found: dict[str, Any] | None = None
    for _ in range(150):
        found = await asyncio.to_thread(jaeger.get_trace, trace_id)
        if found and found.get("data") and len(found["data"][0]["spans"]) >= count:
            trace: dict[str, Any] = found["data"][0]
            return trace
        await asyncio.sleep(0.2)
    raise AssertionError(f"jaeger never held {count} spans of {trace_id}: {found}")


async def test_jaeger_holds_every_hop_of_a_retroactively_kept_trace(jaeger: servers.Jaeger) -> None:
    reporters = [{"type": "jaegerCollector", "endpoint": jaeger.collector_url}]
    async with embedharness.path(reporters=reporters) as p:
        async with p.http.get(f"{p.gateway.proxy_url}/api/a") as response:
            assert response.status == 200
            healthy = response.headers["X-Trace-Id"]
        async with p.http.get(f"{p.gateway.proxy_url}/api/a?fail=1") as response:
            assert response.status == 502
            failed = response.headers["X-Trace-Id"]
        trace = await _jaeger_spans(jaeger, failed, 6)
    spans = sorted(trace["spans"], key=lambda s: (s["startTime"], _parent(s) is not None))
    services = {pid: process["serviceName"] for pid, process in trace["processes"].items()}
    chain = [(services[s["processID"]], _tag(s, "span.kind")) for s in spans]
    assert chain == [
        ("edge", "server"),
        ("edge", "client"),
        ("svc-a", "server"),
        ("svc-a", "client"),
        ("svc-b", "server"),
        ("svc-b", "client"),
    ]
    assert _parent(spans[0]) is None
    for child, parent in zip(spans[1:], spans, strict=False):
        assert _parent(child) == parent["spanID"], (child["operationName"], parent["operationName"])
    # the leaf's failure shows where it happened, as each backend reads an error
    leaf_call = spans[-1]
    assert _tag(leaf_call, "http.response.status_code") == 503
    assert _tag(leaf_call, "error") is True
    assert _tag(spans[0], "sampling.priority.reason") == "error"  # the gateway's decision
    for s in spans[2:]:  # the services' spans came out of their retro buffers
        assert (_tag(s, "sampling.priority.reason"), _tag(s, "gatetrace.retro")) == ("error", True)
    # the healthy request's spans expired in the buffers: Jaeger never got them
    assert not (jaeger.get_trace(healthy) or {}).get("data")
