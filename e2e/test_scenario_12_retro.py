"""Scenario 12: a trace kept retroactively, read back from the real Jaeger; a kit-managed
service pod managed by the real operator.

The retro chain of the unit suite (tests/embed/embedharness.py: client -> gateway ->
aiohttp service with the kit -> FastAPI service under uvicorn with the kit -> failing
leaf), every hop sending to the real Jaeger collector (thrift over HTTP) besides its
memory store. Nothing is sampled up front; the leaf's 503 makes the gateway keep the
trace and pull the services' buffered spans. Jaeger must hold every span of every hop
with its parent; a healthy request sent first must never reach Jaeger.
"""

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from peers import servers
from scenarios import gateways, kubeobj, operators
from tests.embed import embedharness

pytestmark = pytest.mark.e2e

TOKEN = "retro-e2e-token"


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
    assert chain == embedharness.KEPT_CHAIN
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


NS = "retro-svc"
ROOT = "retro-root"
SYSTEM = "retro-system"


async def _until(probe: Any, timeout: float, what: str) -> Any:
    """``probe()`` (a coroutine function) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def test_the_operator_manages_a_kit_service_pod_like_a_gateway_pod(
    kube: servers.ControlPlane, helm: Path, tmp_path: Path
) -> None:
    """The real operator (the chart's RBAC, its ServiceAccount) finds a kit-managed
    service's Pod by its labels, pushes it the policy selecting it through its admin port,
    and the service runs it: GET /admin/v1/tracing shows the revision, the status 1/1."""
    from gatetrace import embed
    from gatetrace.gateway import store

    def setup() -> Path:
        kubeobj.ensure_crds(kube)
        kubeobj.ensure_namespaces(kube, ROOT, NS)
        sa, _ = operators.install_rbac(kube, helm, "gt-retro", SYSTEM)
        kubeobj.admin_token_secret(kube, SYSTEM, "gatetrace-admin-token", TOKEN)
        return operators.service_account_kubeconfig(kube, SYSTEM, sa, tmp_path / "sa.kubeconfig")

    kubeconfig = await asyncio.to_thread(setup)
    ip = "127.0.0.61"
    kit = embed.Kit("orders", token=TOKEN, sink=store.SpanStore(), environ={})
    admin = embed.AdminServer(kit, ip, gateways.free_port(ip))
    await admin.start()
    operator = operators.OperatorProcess(
        "retro",
        kubeconfig,
        tmp_path,
        root_namespace=ROOT,
        token_secret=f"{SYSTEM}/gatetrace-admin-token",
    )
    spec = {
        "selector": {"matchLabels": {"app": "orders"}},
        "sampling": {"sampler": {"type": "probabilistic", "rate": 0.3}},
        "reporters": [{"type": "memory"}],
    }
    try:
        pod = kubeobj.gateway_pod("orders-0", NS, "orders", admin.port, {"app": "orders"})
        await asyncio.to_thread(kubeobj.apply, kube, pod)
        await asyncio.to_thread(kubeobj.set_pod_status, kube, "orders-0", NS, ip)
        await asyncio.to_thread(operator.start)
        await asyncio.to_thread(kubeobj.apply, kube, kubeobj.policy("orders", NS, spec))

        async def running() -> dict[str, Any] | None:
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{admin.url}/admin/v1/tracing", headers={"Authorization": f"Bearer {TOKEN}"}
                ) as response,
            ):
                if response.status != 200:
                    return None
                body: dict[str, Any] = await response.json()
            sampler = body["config"]["sampling"]["sampler"]
            return body if sampler.get("rate") == 0.3 else None

        body = await _until(running, 60.0, "the policy on the kit service")
        assert body["revision"] >= 1
        assert [s["name"] for s in body["sources"]] == ["orders"]
        assert kit.holder.current is not None

        async def applied() -> dict[str, Any] | None:
            obj = await asyncio.to_thread(kubeobj.get, kube, "tracingpolicy", "orders", NS)
            status = (obj or {}).get("status") or {}
            return status if status.get("appliedPods") == status.get("targetPods") == 1 else None

        await _until(applied, 30.0, "Applied 1/1 in the policy status")
    finally:
        await asyncio.to_thread(
            kube.kubectl_run, "delete", "tp", "--all", "-n", NS, "--timeout=30s", check=False
        )
        await asyncio.to_thread(operator.stop)
        await asyncio.to_thread(kubeobj.delete, kube, "pod", "orders-0", NS)
        await admin.stop()
        await kit.close()
