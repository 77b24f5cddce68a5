"""Scenario 5: faults.

Backends stopped during traffic: the gateway's latency and error rate stay as they
were (the request path never waits on a reporter), the lost spans are counted in its
/metrics, and once the backends are back, new spans reach them. A gateway pod whose
admin API cannot be reached: its policy says Degraded naming that pod, the other pod
is applied, and the pod catches up once it answers.
"""

import json
import secrets
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from peers import servers
from scenarios import gateways, kubeobj, operators

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(24)


class Traffic(threading.Thread):
    """Requests to the gateway back to back; (send time, seconds, status) each."""

    def __init__(self, gateway: gateways.GatewayProcess) -> None:
        super().__init__(daemon=True)
        self.client = gateways.Client(gateway)
        self.samples: list[tuple[float, float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    status, _, _ = self.client.request("/api/items")
                except OSError:
                    status = 0
                self.samples.append((started, time.monotonic() - started, status))
                time.sleep(0.005)
        finally:
            self.client.close()

    def window(self, start: float, end: float) -> tuple[list[float], float]:
        """(latencies, error share) of the requests sent in [start, end)."""
        chosen = [(d, s) for t, d, s in self.samples if start <= t < end]
        assert len(chosen) >= 30, f"only {len(chosen)} requests in the window"
        errors = sum(1 for _, s in chosen if s != 200) / len(chosen)
        return [d for d, _ in chosen], errors


REPORTERS = ("zipkin", "jaegerCollector")


def _dropped(gw: gateways.GatewayProcess, reporter: str) -> float:
    metrics = gw.metrics()
    return gateways.metric_sum(metrics, "gatetrace_reporter_spans_dropped_total", reporter=reporter)


def _exported(gw: gateways.GatewayProcess, reporter: str) -> float:
    metrics = gw.metrics()
    return gateways.metric_sum(
        metrics, "gatetrace_reporter_spans_exported_total", reporter=reporter
    )


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def test_stopped_backends_do_not_slow_or_fail_requests_and_drops_are_counted(
    jaeger: servers.Jaeger, zipkin: servers.Zipkin, tmp_path: Path
) -> None:
    tracing = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [
            {"type": "zipkin", "endpoint": zipkin.spans_url},
            {"type": "jaegerCollector", "endpoint": jaeger.collector_url},
        ],
        "batching": {
            "flushIntervalMs": 100,
            "exportTimeoutMs": 500,
            # small, so an outage fills the queue within seconds: failed batches are
            # retried for 30 s (engine default) before they count as export_failed
            "maxQueueSize": 64,
            "maxBatchSize": 16,
        },
    }
    with gateways.Upstream() as upstream:
        gw = gateways.GatewayProcess(
            "faults",
            "127.0.0.51",
            tmp_path,
            token=TOKEN,
            service="faults-gateway",
            routes=[{"name": "items", "prefix": "/api", "upstream": upstream.url}],
            tracing=tracing,
        ).start()
        traffic = Traffic(gw)
        try:
            traffic.start()
            time.sleep(3.0)
            baseline = {r: _dropped(gw, r) for r in REPORTERS}
            stop_at = time.monotonic()
            jaeger.stop()
            zipkin.stop()
            time.sleep(0.5)
            down_from = time.monotonic()
            time.sleep(3.0)
            traffic.stopping.set()
            traffic.join(10)
            before, before_errors = traffic.window(0.0, stop_at)
            during, during_errors = traffic.window(down_from, float("inf"))
            assert before_errors == 0 and during_errors == 0, (before_errors, during_errors)
            p50_before, p50_during = statistics.median(before), statistics.median(during)
            p95_before, p95_during = _p(before, 95), _p(during, 95)
            # a shared 2-core machine: allow noise, not a request path that waits on
            # a failing export (every export attempt here takes a refused connect)
            assert p50_during <= 2 * p50_before + 0.010, (p50_before, p50_during)
            assert p95_during <= 3 * p95_before + 0.030, (p95_before, p95_during)

            def dropped() -> dict[str, float] | None:
                counts = {r: _dropped(gw, r) - baseline[r] for r in REPORTERS}
                return counts if all(counts.values()) else None

            counts = kubeobj.eventually(dropped, 20.0, what="drops counted for both reporters")
            metrics = gw.metrics()
            failures = gateways.metric_sum(metrics, "gatetrace_reporter_export_failures_total")
            assert failures > 0
            print(
                f"\nfaults: p50 {p50_before * 1000:.1f} -> {p50_during * 1000:.1f} ms, "
                f"p95 {p95_before * 1000:.1f} -> {p95_during * 1000:.1f} ms, "
                f"{len(before)}+{len(during)} requests, dropped {counts}"
            )
        finally:
            traffic.stopping.set()
            if not jaeger.running:
                jaeger.start()
            if not zipkin.running:
                zipkin.start()

        try:
            # backends are back: new traffic reaches both again (the first requests may
            # still find the queue full of retried spans: keep sending until one arrives)
            exported = {r: _exported(gw, r) for r in REPORTERS}
            client = gateways.Client(gw)
            sent: list[str] = []

            def arrived(get: Any) -> str | None:
                _, headers, _ = client.request("/api/items/after")
                sent.append(headers["x-trace-id"])
                time.sleep(0.3)
                return next((t for t in sent if get(t)), None)

            try:
                kubeobj.eventually(
                    lambda: arrived(lambda t: (jaeger.get_trace(t) or {}).get("data")),
                    30.0,
                    what="jaeger receives spans again",
                )
                kubeobj.eventually(
                    lambda: arrived(zipkin.get_trace), 30.0, what="zipkin receives spans again"
                )
            finally:
                client.close()
            assert all(_exported(gw, r) > exported[r] for r in REPORTERS)
        finally:
            gw.stop()


def test_an_unreachable_pod_makes_the_policy_degraded_naming_it(
    kube: servers.ControlPlane, helm: Path, tmp_path: Path
) -> None:
    system, root, ns = "faults-system", "faults-root", "faults-gw"
    kubeobj.ensure_crds(kube)
    kubeobj.ensure_namespaces(kube, root, ns)
    sa, _ = operators.install_rbac(kube, helm, "gt-faults", system)
    kubeconfig = operators.service_account_kubeconfig(kube, system, sa, tmp_path / "sa")
    kubeobj.admin_token_secret(kube, system, "gatetrace-admin-token", TOKEN)
    routes = [{"name": "app", "prefix": "/", "upstream": "http://127.0.0.1:9"}]
    good = gateways.GatewayProcess("ok", "127.0.0.52", tmp_path, token=TOKEN, routes=routes)
    dead = gateways.GatewayProcess("dead", "127.0.0.53", tmp_path, token=TOKEN, routes=routes)
    good.start()  # `dead` is not started: nothing answers on its address
    for name, gw in (("gw-ok", good), ("gw-dead", dead)):
        kubeobj.apply(kube, kubeobj.gateway_pod(name, ns, "edge", gw.admin_port, {}))
        kubeobj.set_pod_status(kube, name, ns, gw.ip)
    operator = operators.OperatorProcess(
        "faults",
        kubeconfig,
        tmp_path,
        root_namespace=root,
        token_secret=f"{system}/gatetrace-admin-token",
    ).start()
    try:
        spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.25}}}
        kubeobj.apply(kube, kubeobj.policy("default", root, spec))

        def degraded() -> dict[str, Any] | None:
            obj = kubeobj.get(kube, "tracingpolicy", "default", root) or {}
            cond = kubeobj.condition(obj, "Degraded")
            return obj if cond and cond["status"] == "True" else None

        obj = kubeobj.eventually(degraded, 30.0, what="Degraded")
        message = (kubeobj.condition(obj, "Degraded") or {})["message"]
        assert "gw-dead" in message and "gw-ok" not in message, message
        status = obj["status"]
        assert (status["appliedPods"], status["targetPods"]) == (1, 2), status
        pods = {p["name"].rsplit("/", 1)[-1]: p["state"] for p in status["pods"]}
        assert pods == {"gw-ok": "Applied", "gw-dead": "Failed"}, status["pods"]
        applied = kubeobj.condition(obj, "Applied") or {}
        assert applied.get("status") == "False", applied
        assert good.running()["config"]["sampling"]["sampler"]["rate"] == 0.25
        events = kubeobj.events_for(kube, "default", root)
        assert any(e["type"] == "Warning" and "gw-dead" in e["message"] for e in events), events

        # the pod comes up: the operator's retry applies it, Degraded clears
        dead.start()

        def recovered() -> dict[str, Any] | None:
            found = kubeobj.get(kube, "tracingpolicy", "default", root) or {}
            cond = kubeobj.condition(found, "Degraded")
            st = found.get("status") or {}
            healthy = cond is None or cond["status"] == "False"
            return found if healthy and st.get("appliedPods") == 2 else None

        kubeobj.eventually(recovered, 30.0, what="recovered")
        assert dead.running()["config"]["sampling"]["sampler"]["rate"] == 0.25
    finally:
        kube.kubectl_run("delete", "tp", "default", "-n", root, "--timeout=30s", check=False)
        operator.stop()
        kube.kubectl_run(
            "patch", "tp", "default", "-n", root, "--type=merge",
            "-p", json.dumps({"metadata": {"finalizers": None}}), check=False,
        )  # fmt: skip
        for name in ("gw-ok", "gw-dead"):
            kubeobj.delete(kube, "pod", name, ns)
        good.stop()
        dead.stop()
