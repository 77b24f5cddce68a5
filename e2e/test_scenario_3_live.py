"""Scenario 3: live reconfiguration with the real kopf operator and real gateways.

One control plane; the operator (`gatetrace operator`, a subprocess) runs as the
ServiceAccount of the Helm chart with exactly the chart's RBAC. Three gateway "pods":
Pod objects whose status the test patches (Running, Ready, podIP 127.0.0.x) as KWOK
does, each backed by a real `gatetrace gateway` process bound to that address — two
pods of gateway `edge` in namespace live-a, one of gateway `inner` in live-b. The tests
run in file order and build on each other's state (one module, one set of processes).
"""

import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from peers import servers
from scenarios import gateways, kubeobj, operators

from gatetrace.gateway import cpus

pytestmark = pytest.mark.e2e

ROOT, NS_A, NS_B, NS_SHOP, SYSTEM = "live-root", "live-a", "live-b", "live-shop", "live-system"
RELEASE = "gt-live"
TOKEN_SECRET = f"{SYSTEM}/gatetrace-admin-token"
LABELS = {"app.kubernetes.io/name": "api-gateway"}
N = 200  # requests per sampled-share measurement: sd of a share <= 0.036


@dataclass
class Pod:
    name: str
    namespace: str
    gateway: str
    process: gateways.GatewayProcess


@dataclass
class Live:
    kube: servers.ControlPlane
    workdir: Path
    token: str
    upstream: gateways.Upstream
    kubeconfig: Path
    pods: dict[str, Pod] = field(default_factory=dict)
    operator: operators.OperatorProcess | None = None

    def start_operator(self, name: str, **kw: Any) -> operators.OperatorProcess:
        op = operators.OperatorProcess(
            name,
            self.kubeconfig,
            self.workdir,
            root_namespace=ROOT,
            token_secret=TOKEN_SECRET,
            **kw,
        )
        return op.start()

    def add_pod(self, name: str, namespace: str, gateway: str, ip: str, *, ready: bool) -> Pod:
        routes = [
            {"name": "app", "prefix": "/app", "upstream": self.upstream.url, "namespace": NS_A},
            {
                "name": "shop",
                "prefix": "/shop",
                "upstream": self.upstream.url,
                "namespace": NS_SHOP,
            },
        ]
        process = gateways.GatewayProcess(
            name, ip, self.workdir, token=self.token, routes=routes, service=gateway
        ).start()
        pod = Pod(name, namespace, gateway, process)
        self.pods[name] = pod
        manifest = kubeobj.gateway_pod(name, namespace, gateway, process.admin_port, LABELS)
        kubeobj.apply(self.kube, manifest)
        kubeobj.set_pod_status(self.kube, name, namespace, ip, ready=ready)
        return pod

    def configmap(self, namespace: str, gateway: str) -> dict[str, Any] | None:
        cm = kubeobj.get(self.kube, "configmap", f"gatetrace-{gateway}", namespace)
        return None if cm is None else dict(json.loads(cm["data"]["tracing.json"]))

    def converged(self, timeout: float = 20.0, **want: Any) -> dict[str, int]:
        """Waits until every pod runs its gateway's ConfigMap revision (and, per `want`
        key `rate`, that sampler rate); the revisions by gateway."""

        def probe() -> dict[str, int] | None:
            revisions: dict[str, int] = {}
            for pod in self.pods.values():
                doc = self.configmap(pod.namespace, pod.gateway)
                if doc is None:
                    return None
                try:
                    running = pod.process.running()
                except OSError:
                    return None
                if running["revision"] != doc["revision"]:
                    return None
                if "rate" in want and _rate(running["config"]) != want["rate"]:
                    return None
                revisions[pod.gateway] = doc["revision"]
            return revisions

        return kubeobj.eventually(probe, timeout, what=f"pods converged {want}")

    def policy(self, name: str, namespace: str) -> dict[str, Any]:
        found = kubeobj.get(self.kube, "tracingpolicy", name, namespace)
        assert found is not None, f"{namespace}/{name} is gone"
        return dict(found)

    def status_settled(
        self, name: str, namespace: str, applied: int, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Waits for `Applied applied/applied` at the policy's current generation."""

        def probe() -> dict[str, Any] | None:
            obj = self.policy(name, namespace)
            status = obj.get("status") or {}
            cond = kubeobj.condition(obj, "Applied")
            if (
                status.get("observedGeneration") == obj["metadata"]["generation"]
                and status.get("targetPods") == applied
                and status.get("appliedPods") == applied
                and cond is not None
                and cond["status"] == "True"
            ):
                return obj
            return None

        return kubeobj.eventually(probe, timeout, what=f"{namespace}/{name} Applied {applied}")


def _rate(config: dict[str, Any]) -> Any:
    return ((config.get("sampling") or {}).get("sampler") or {}).get("rate")


def _spec(rate: float, **extra: Any) -> dict[str, Any]:
    return {
        "sampling": {
            "sampler": {"type": "probabilistic", "rate": rate},
            "parentBased": True,
            "namespaceOverrides": {"allowed": True, "maxRate": 0.5, "maxTracesPerSecond": 1000},
        },
        "propagation": {"extract": ["tracecontext"], "inject": ["tracecontext"]},
        "reporters": [{"type": "memory", "maxSpans": 20000}],
        "batching": {"flushIntervalMs": 100},
        **extra,
    }


@pytest.fixture(scope="module")
def live(
    kube: servers.ControlPlane, helm: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("live")
    kubeobj.ensure_crds(kube, peering=True)
    kubeobj.ensure_namespaces(kube, ROOT, NS_A, NS_B, NS_SHOP)
    # replicas=2 renders the peering rules too (the last test runs two replicas)
    sa, _ = operators.install_rbac(kube, helm, RELEASE, SYSTEM, "--set", "operator.replicas=2")
    kubeconfig = operators.service_account_kubeconfig(kube, SYSTEM, sa, workdir / "sa.kubeconfig")
    token = secrets.token_urlsafe(24)
    kubeobj.admin_token_secret(kube, SYSTEM, "gatetrace-admin-token", token)
    with gateways.Upstream() as upstream:
        state = Live(kube, workdir, token, upstream, kubeconfig)
        try:
            state.add_pod("edge-0", NS_A, "edge", "127.0.0.21", ready=True)
            state.add_pod("edge-1", NS_A, "edge", "127.0.0.22", ready=True)
            state.add_pod("inner-0", NS_B, "inner", "127.0.0.23", ready=True)
            state.operator = state.start_operator("main")
            yield state
        finally:
            # policies carry the operator's finalizer: remove them while it runs
            for ns in (ROOT, NS_A, NS_B, NS_SHOP):
                kube.kubectl_run("delete", "tp", "--all", "-n", ns, "--timeout=30s", check=False)
            if state.operator is not None:
                state.operator.stop()
            for ns in (ROOT, NS_A, NS_B, NS_SHOP):
                kube.kubectl_run(
                    "patch", "tp", "--all", "-n", ns, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False,
                )  # fmt: skip
            for pod in state.pods.values():
                pod.process.stop()
                kubeobj.delete(kube, "pod", pod.name, pod.namespace)


def test_apply_policy_every_pod_reports_the_revision(live: Live) -> None:
    started = time.monotonic()
    kubeobj.apply(live.kube, kubeobj.policy("default", ROOT, _spec(0.1)))
    revisions = live.converged(rate=0.1)
    took = time.monotonic() - started
    assert took < 15, f"rollout took {took:.1f}s"
    assert set(revisions) == {"edge", "inner"}
    obj = live.status_settled("default", ROOT, 3)
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"] == 1
    assert sorted(p["name"] for p in status["pods"]) == [
        f"{NS_A}/edge-0",
        f"{NS_A}/edge-1",
        f"{NS_B}/inner-0",
    ] or sorted(p["name"] for p in status["pods"]) == ["edge-0", "edge-1", "inner-0"]
    assert {p["state"] for p in status["pods"]} == {"Applied"}
    table = live.kube.kubectl_run("get", "tp", "default", "-n", ROOT).stdout.split()
    assert table[-4:-1] == ["3", "3", "True"], table  # APPLIED TARGET READY (then AGE)
    events = kubeobj.events_for(live.kube, "default", ROOT)
    assert any(e["reason"] == "Applied" and "3/3" in e["message"] for e in events), events


def test_rate_change_the_sampled_share_of_real_traffic_follows(live: Live) -> None:
    edge = live.pods["edge-0"]
    low = gateways.sampled_share(edge.process, "/app/x", N)
    assert 0.02 <= low <= 0.2, low
    before = live.converged(rate=0.1)
    live.kube.kubectl_run(
        "patch", "tp", "default", "-n", ROOT, "--type=merge",
        "-p", json.dumps({"spec": {"sampling": {"sampler": {"rate": 0.9}}}}),
    )  # fmt: skip
    after = live.converged(rate=0.9)
    assert all(after[g] > before[g] for g in before), (before, after)
    high = gateways.sampled_share(edge.process, "/app/x", N)
    assert 0.8 <= high <= 0.98, high
    # the gateways run the default `workers` (one proxy process per CPU): the operator's
    # one PUT reached every worker of the pod, and every one of them served this traffic
    workers = edge.process.workers()
    cpus_allowed = cpus.available_cpus()
    if cpus_allowed > 1:
        assert len(workers) == cpus_allowed, workers
        assert {w["revision"] for w in workers} == {edge.process.revision()}, workers
        assert all(w["ready"] and w["served"] > 0 for w in workers), workers
    else:
        assert workers == []
    inner = gateways.sampled_share(live.pods["inner-0"].process, "/app/x", N)
    assert 0.8 <= inner <= 0.98, inner
    obj = live.status_settled("default", ROOT, 3)
    assert obj["metadata"]["generation"] == 2


def test_namespace_override_changes_only_its_routes_clamped(live: Live) -> None:
    # live-shop has no gateway: its selector-less policy overrides sampling of traffic
    # routed to services in live-shop, up to the gateways' maxRate 0.5
    shop = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.05}}}
    kubeobj.apply(live.kube, kubeobj.policy("shop", NS_SHOP, shop))
    edge = live.pods["edge-1"]

    def overridden() -> dict[str, Any] | None:
        cfg = edge.process.running()["config"]
        found = (cfg.get("namespaceOverrides") or {}).get(NS_SHOP)
        return cfg if found else None

    kubeobj.eventually(overridden, 20.0, what="namespace override delivered")
    live.converged()
    shop_low = gateways.sampled_share(edge.process, "/shop/cart", N)
    assert shop_low <= 0.12, shop_low
    app = gateways.sampled_share(edge.process, "/app/x", N)
    assert app >= 0.8, app

    # asking for more than the gateway allows is clamped, not rejected
    kubeobj.apply(live.kube, kubeobj.policy("shop", NS_SHOP, {"sampling": {"sampler": {
        "type": "probabilistic", "rate": 0.95}}}))  # fmt: skip

    def clamped() -> dict[str, Any] | None:
        obj = live.policy("shop", NS_SHOP)
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return obj if status.get("clamps") else None

    obj = kubeobj.eventually(clamped, 20.0, what="clamp in status")
    [clamp, *_] = [c for c in obj["status"]["clamps"] if "rate" in c["path"]]
    assert clamp["action"] == "clamped"
    assert (float(clamp["requested"]), float(clamp["applied"])) == (0.95, 0.5)
    live.converged()
    running = edge.process.running()["config"]["namespaceOverrides"][NS_SHOP]
    assert running["sampling"]["sampler"]["rate"] == 0.5
    shop_high = gateways.sampled_share(edge.process, "/shop/cart", N)
    assert 0.35 <= shop_high <= 0.65, shop_high
    events = kubeobj.events_for(live.kube, "shop", NS_SHOP)
    assert any(e["reason"] == "Clamped" for e in events), events
    live.kube.kubectl_run("delete", "tp", "shop", "-n", NS_SHOP, "--timeout=30s")


def test_conflicting_policies_the_younger_is_conflicted(live: Live) -> None:
    older = kubeobj.policy("ns-default-a", NS_A, {"tags": {"team": "older"}})
    kubeobj.apply(live.kube, older)
    time.sleep(1.1)  # creationTimestamp has one-second resolution
    kubeobj.apply(live.kube, kubeobj.policy("ns-default-b", NS_A, {"tags": {"team": "younger"}}))

    def conflicted() -> dict[str, Any] | None:
        obj = live.policy("ns-default-b", NS_A)
        cond = kubeobj.condition(obj, "Conflicted")
        return obj if cond and cond["status"] == "True" else None

    obj = kubeobj.eventually(conflicted, 20.0, what="younger policy Conflicted")
    assert "ns-default-a" in (kubeobj.condition(obj, "Conflicted") or {})["message"]
    winner = live.status_settled("ns-default-a", NS_A, 2)
    cond = kubeobj.condition(winner, "Conflicted")
    assert cond is None or cond["status"] == "False"
    live.converged()
    for name in ("edge-0", "edge-1"):
        assert live.pods[name].process.running()["config"]["tags"]["team"] == "older"
    inner_tags = live.pods["inner-0"].process.running()["config"].get("tags") or {}
    assert "team" not in inner_tags
    events = kubeobj.events_for(live.kube, "ns-default-b", NS_A)
    assert any(e["reason"] == "Conflicted" for e in events), events
    live.kube.kubectl_run("delete", "tp", "ns-default-b", "-n", NS_A, "--timeout=30s")


def test_policies_that_do_not_merge_are_degraded_and_the_pods_keep_their_config(
    live: Live,
) -> None:
    """Each policy is valid alone; together (a batch larger than the queue) they are not.
    Nothing is pushed, the pods keep running their last config, and both policies say
    Degraded naming the pods; deleting one of them heals the other."""
    queue = {"tags": {"team": "older"}, "batching": {"maxQueueSize": 1000}}
    kubeobj.apply(live.kube, kubeobj.policy("ns-default-a", NS_A, queue))
    live.status_settled("ns-default-a", NS_A, 2)
    live.converged()
    before = {n: live.pods[n].process.running() for n in ("edge-0", "edge-1")}
    assert {r["config"]["batching"]["maxQueueSize"] for r in before.values()} == {1000}
    big = {"selector": {"matchLabels": LABELS}, "batching": {"maxBatchSize": 2000}}
    kubeobj.apply(live.kube, kubeobj.policy("big-batches", NS_A, big))

    def degraded(name: str) -> Any:
        def probe() -> str | None:
            obj = live.policy(name, NS_A)
            cond = kubeobj.condition(obj, "Degraded")
            if (
                (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
                and cond is not None
                and cond["status"] == "True"
            ):
                return str(cond["message"])
            return None

        return probe

    for name in ("ns-default-a", "big-batches"):
        message = kubeobj.eventually(degraded(name), 20.0, what=f"{name} Degraded")
        for pod in ("edge-0", "edge-1"):
            assert f"{NS_A}/{pod}: the merged config is invalid" in message, message
        assert "maxBatchSize" in message, message
    for name, running in before.items():  # nothing half-merged reached a pod
        assert live.pods[name].process.running()["revision"] == running["revision"]
    events = kubeobj.events_for(live.kube, "big-batches", NS_A)
    assert any(e["type"] == "Warning" and "edge-0" in e["message"] for e in events), events

    live.kube.kubectl_run("delete", "tp", "big-batches", "-n", NS_A, "--timeout=30s")
    kubeobj.apply(live.kube, kubeobj.policy("ns-default-a", NS_A, {"tags": {"team": "older"}}))
    healed = live.status_settled("ns-default-a", NS_A, 2)
    cond = kubeobj.condition(healed, "Degraded")
    assert cond is not None and cond["status"] == "False"
    live.converged()
    for name in ("edge-0", "edge-1"):
        batching = live.pods[name].process.running()["config"].get("batching") or {}
        assert batching.get("maxQueueSize", 2048) == 2048


def test_a_gateway_wide_budget_is_split_between_its_ready_pods(live: Live) -> None:
    """``rateScope: gateway``: the edge gateway's two Ready pods run half the traces/s each
    (and the ConfigMap holds that share for pods that start meanwhile)."""
    budget = {
        "selector": {"matchLabels": LABELS},
        "sampling": {
            "rateScope": "gateway",
            "sampler": {"type": "rateLimiting", "tracesPerSecond": 10},
        },
    }
    kubeobj.apply(live.kube, kubeobj.policy("edge-budget", NS_A, budget))
    live.status_settled("edge-budget", NS_A, 2)
    live.converged()
    for name in ("edge-0", "edge-1"):
        sampling = live.pods[name].process.running()["config"]["sampling"]
        assert (sampling["rateScope"], sampling["sampler"]["tracesPerSecond"]) == ("gateway", 5)
    stored = live.configmap(NS_A, "edge")
    assert stored is not None and stored["config"]["sampling"]["sampler"]["tracesPerSecond"] == 5
    live.kube.kubectl_run("delete", "tp", "edge-budget", "-n", NS_A, "--timeout=30s")
    live.converged()


def test_delete_reverts_the_pods_to_the_remaining_policies(live: Live) -> None:
    workload = kubeobj.policy(
        "edge-workload",
        NS_A,
        {"selector": {"matchLabels": LABELS}, "sampling": {"sampler": {"type": "const",
         "decision": True}}, "tags": {"team": "workload"}},
    )  # fmt: skip
    kubeobj.apply(live.kube, workload)
    live.status_settled("edge-workload", NS_A, 2)
    live.converged()
    for name in ("edge-0", "edge-1"):
        cfg = live.pods[name].process.running()["config"]
        assert (cfg["tags"]["team"], cfg["sampling"]["sampler"]["type"]) == ("workload", "const")
    assert gateways.sampled_share(live.pods["edge-0"].process, "/app/x", 50) == 1.0

    out = live.kube.kubectl_run("delete", "tp", "edge-workload", "-n", NS_A, "--timeout=30s")
    assert "deleted" in out.stdout
    assert kubeobj.get(live.kube, "tracingpolicy", "edge-workload", NS_A) is None
    live.converged(rate=0.9)
    for name in ("edge-0", "edge-1"):
        cfg = live.pods[name].process.running()["config"]
        assert (cfg["tags"]["team"], cfg["sampling"]["sampler"]["type"]) == (
            "older",
            "probabilistic",
        )


def _accepted(live: Live, name: str, namespace: str, status: str) -> Any:
    """Waits for Accepted=`status` at the policy's current generation; the policy."""

    def probe() -> dict[str, Any] | None:
        obj = live.policy(name, namespace)
        cond = kubeobj.condition(obj, "Accepted")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if observed == obj["metadata"]["generation"] and cond and cond["status"] == status:
            return obj
        return None

    return kubeobj.eventually(probe, 30.0, what=f"{namespace}/{name} Accepted={status}")


def test_reporter_credentials_only_from_opted_in_secrets_and_kept_when_the_secret_goes(
    live: Live,
) -> None:
    """No confused deputy, then last known good in Kubernetes mode: a policy naming a
    Secret that did not opt in is Accepted=False and nothing is sent with it; labelled,
    its (stripped) value goes to the OTLP endpoint; the Secret deleted, the policy is
    invalid but its last valid generation stays in force on the pod."""
    inner = live.pods["inner-0"].process
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "otlp-creds", "namespace": NS_B},
        "stringData": {"authorization": "Bearer e2e-t0ken\n"},  # --from-file style
    }
    kubeobj.apply(live.kube, secret)
    endpoint = f"{live.upstream.url}/v1/traces"
    spec = {
        "selector": {"matchLabels": LABELS},
        "reporters": [
            {"type": "memory"},
            {"type": "otlpHttp", "endpoint": endpoint, "headersFrom": {"secretName": "otlp-creds"}},
        ],
        "batching": {"flushIntervalMs": 100},
    }
    before = inner.running()
    kubeobj.apply(live.kube, kubeobj.policy("inner-otlp", NS_B, spec))
    refused = _accepted(live, "inner-otlp", NS_B, "False")
    message = kubeobj.condition(refused, "Accepted")["message"]  # type: ignore[index]
    assert "Secret live-b/otlp-creds has not opted in" in message, message
    assert "gatetrace.dev/reporter-credentials" in message
    gateways.sampled_share(inner, "/app/x", 20)
    time.sleep(1.0)
    assert live.upstream.received("/v1/traces") == [], "spans were sent with a foreign Secret"
    assert inner.running()["revision"] == before["revision"]  # never valid: contributes nothing

    live.kube.kubectl_run(
        "label", "secret", "otlp-creds", "-n", NS_B, "gatetrace.dev/reporter-credentials=true"
    )
    live.status_settled("inner-otlp", NS_B, 1, timeout=30.0)  # the drift timer re-reads it
    applied = inner.running()
    assert [r["type"] for r in applied["config"]["reporters"]] == ["memory", "otlpHttp"]

    def sent() -> list[dict[str, str]] | None:
        gateways.sampled_share(inner, "/app/x", 10)
        return live.upstream.received("/v1/traces") or None

    received = kubeobj.eventually(sent, 20.0, what="OTLP export with the Secret's header")
    assert {h.get("authorization") for h in received} == {"Bearer e2e-t0ken"}

    kubeobj.delete(live.kube, "secret", "otlp-creds", NS_B)

    def stale() -> dict[str, Any] | None:
        obj = live.policy("inner-otlp", NS_B)
        degraded = kubeobj.condition(obj, "Degraded")
        accepted = kubeobj.condition(obj, "Accepted")
        if accepted and accepted["status"] == "False" and degraded and degraded["status"] == "True":
            return obj
        return None

    obj = kubeobj.eventually(stale, 30.0, what="inner-otlp Degraded (stale generation)")
    degraded = kubeobj.condition(obj, "Degraded")
    assert degraded is not None and degraded["reason"] == "StaleGeneration"
    assert "Secret live-b/otlp-creds" in kubeobj.condition(obj, "Accepted")["message"]  # type: ignore[index]
    assert obj["status"]["lastValidGeneration"] == obj["metadata"]["generation"]
    time.sleep(4)  # another drift pass: still nothing pushed over the pod
    kept = inner.running()
    assert (kept["revision"], kept["version"]) == (applied["revision"], applied["version"])

    live.kube.kubectl_run("delete", "tp", "inner-otlp", "-n", NS_B, "--timeout=30s")
    live.converged()
    reverted = inner.running()["config"]
    assert [r["type"] for r in reverted["reporters"]] == ["memory"]


def test_a_new_ready_pod_gets_the_config(live: Live) -> None:
    pod = live.add_pod("edge-2", NS_A, "edge", "127.0.0.24", ready=False)
    time.sleep(2)
    assert pod.process.revision() is None, "an unready pod was pushed to"
    kubeobj.set_pod_status(live.kube, "edge-2", NS_A, "127.0.0.24", ready=True)
    started = time.monotonic()
    live.converged(rate=0.9)
    assert time.monotonic() - started < 10
    live.status_settled("default", ROOT, 4)
    live.status_settled("ns-default-a", NS_A, 3)


def test_a_restarted_gateway_comes_back_with_the_configmap_and_drift_is_repaired(
    live: Live,
) -> None:
    pod = live.pods["edge-0"]
    want = live.configmap(NS_A, "edge")
    assert want is not None
    pod.process.stop()
    # the kubelet would project the ConfigMap into the pod: do it by hand
    pod.process.tracing_file.write_text(json.dumps(want))
    pod.process.start()
    running = pod.process.running()
    assert (running["revision"], running["version"]) == (want["revision"], want["version"])
    assert _rate(running["config"]) == 0.9
    metrics = pod.process.metrics()
    # it came back with the file's config; no "admin == 0" here: on a loaded machine the
    # operator saw the stopped pod fail its drift GET and its retry may PUT the same
    # revision again once the pod answers (an idempotent push, seen in CI)
    assert gateways.metric_sum(metrics, "gatetrace_config_applies_total", source="file") == 1

    # restarted without the mount: it runs no tracing config until the
    # operator's drift check (every 3 s) finds it and pushes the config again
    pod.process.stop()
    pod.process.tracing_file.unlink()
    pod.process.start()
    # no config until the operator pushes one (its drift check may already have, on a
    # loaded machine, by the time we ask): the applies below say where it came from
    live.converged(timeout=15.0, rate=0.9)
    metrics = pod.process.metrics()
    assert gateways.metric_sum(metrics, "gatetrace_config_applies_total", source="file") == 0
    assert (
        gateways.metric_sum(
            metrics, "gatetrace_config_applies_total", source="admin", outcome="applied"
        )
        == 1
    ), "the operator's drift check did not push the config again"
    live.status_settled("default", ROOT, 4)


def test_operator_killed_mid_rollout_a_new_one_converges(live: Live) -> None:
    assert live.operator is not None
    stuck = live.pods["edge-1"].process
    pid = stuck.process.pid
    assert pid is not None
    # edge-1 hangs (SIGSTOP): its push cannot finish, so the rollout is caught halfway
    os.kill(pid, signal.SIGSTOP)
    try:
        live.kube.kubectl_run(
            "patch", "tp", "default", "-n", ROOT, "--type=merge",
            "-p", json.dumps({"spec": {"sampling": {"sampler": {"rate": 0.3}}}}),
        )  # fmt: skip

        def others_done() -> bool | None:
            rates = [_rate(live.pods[n].process.running()["config"]) for n in ("edge-0", "inner-0")]
            return True if rates == [0.3, 0.3] else None

        kubeobj.eventually(others_done, 20.0, what="the other pods got the new rate")
        live.operator.kill()
    finally:
        # the hung pod dies too and starts afresh (no tracing file): only a new
        # operator can bring it the config, not a request the old one left behind
        os.kill(pid, signal.SIGKILL)
        stuck.stop()
    stuck.start()
    assert stuck.revision() is None
    live.operator = live.start_operator("second")
    live.converged(rate=0.3)
    obj = live.status_settled("default", ROOT, 4)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    share = gateways.sampled_share(stuck, "/app/x", N)
    assert 0.17 <= share <= 0.43, share


def test_two_operator_replicas_exactly_one_acts(live: Live) -> None:
    assert live.operator is not None
    live.operator.stop()
    live.operator = None
    peering = RELEASE
    kubeobj.apply(
        live.kube,
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    high = live.start_operator("replica-high", peering=peering, priority=200)
    low = live.start_operator("replica-low", peering=peering, priority=100)
    try:
        live.kube.kubectl_run(
            "patch", "tp", "default", "-n", ROOT, "--type=merge",
            "-p", json.dumps({"spec": {"sampling": {"sampler": {"rate": 0.6}}}}),
        )  # fmt: skip
        live.converged(rate=0.6)
        live.status_settled("default", ROOT, 4)
        time.sleep(1)
        pushes = {
            op.name: gateways.metric_sum(op.metrics(), "gatetrace_operator_pushes_total")
            for op in (low, high)
        }
        assert pushes["replica-high"] > 0, pushes
        assert pushes["replica-low"] == 0, pushes
        reconciles = gateways.metric_sum(low.metrics(), "gatetrace_operator_reconciles_total")
        assert reconciles == 0
        # the acting replica leaves (cleanly): the other takes over
        high.stop()
        live.kube.kubectl_run(
            "patch", "tp", "default", "-n", ROOT, "--type=merge",
            "-p", json.dumps({"spec": {"sampling": {"sampler": {"rate": 0.7}}}}),
        )  # fmt: skip
        live.converged(timeout=30.0, rate=0.7)
        assert gateways.metric_sum(low.metrics(), "gatetrace_operator_pushes_total") > 0
    finally:
        live.operator = low
        high.stop()
