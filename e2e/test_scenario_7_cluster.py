"""Scenario 7: the chart as a cluster runs it.

`helm install --wait` into the cluster without containers (peers/cluster.py): the
controller manager turns the chart's Deployments into Pods, the scheduler binds them
to KWOK nodes, and the pod runner runs them from the wheel with the chart's exact
args, config files, ports and probes. The operator authenticates in-cluster (its
projected service-account token, KUBERNETES_SERVICE_HOST), finds the gateway pods by
their labels and reaches each through its podIP and `gt-admin` port.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import cluster as cluster_peers
from scenarios import gateways, incluster, kubeobj

pytestmark = pytest.mark.e2e

NS = "gt-system"
RELEASE = "gt"
GATEWAY = "api-gateway"
GATEWAY_PODS = f"gatetrace.dev/gateway={GATEWAY}"
OPERATOR_PODS = "app.kubernetes.io/name=gatetrace-operator"
VALUES = [
    "--set", "gateway.enabled=true",
    "--set", "operator.driftIntervalSeconds=3",
    "--set", "operator.retryIntervalSeconds=2",
]  # fmt: skip


class Release:
    """The installed chart: its cluster, admin token and gateway pods' admin APIs."""

    def __init__(self, cluster: cluster_peers.Cluster, helm: Path) -> None:
        self.cluster = cluster
        self.kube = cluster.kube
        self.helm = helm
        self.token = ""

    def install(self) -> str:
        out = incluster.helm(
            self.helm, self.kube, "install", RELEASE, str(kubeobj.CHART), "-n", NS,
            "--create-namespace", "--wait", "--timeout=240s", *VALUES,
        )  # fmt: skip
        self.token = incluster.secret_value(self.kube, "gatetrace-admin-token", NS, "token")
        return out

    def gateways(self, count: int) -> list[incluster.AdminApi]:
        found = incluster.ready_pods(self.kube, NS, GATEWAY_PODS, count)
        return [incluster.AdminApi(p, self.token) for p in found]

    def configmap(self) -> dict[str, Any] | None:
        cm = kubeobj.get(self.kube, "configmap", f"gatetrace-{GATEWAY}", NS)
        return None if cm is None else dict(json.loads(cm["data"]["tracing.json"]))

    def converged(self, count: int, timeout: float = 60) -> dict[str, dict[str, Any]]:
        """Waits until `count` Ready gateway pods all run the ConfigMap's revision; what
        each runs, by pod name."""

        def probe() -> dict[str, dict[str, Any]] | None:
            doc = self.configmap()
            if doc is None:
                return None
            running = {g.name: g.running() for g in self.gateways(count)}
            if all(r is not None and r["revision"] == doc["revision"] for r in running.values()):
                return {k: v for k, v in running.items() if v is not None}
            return None

        return kubeobj.eventually(probe, timeout, what=f"{count} gateway pods converged")

    def policy_applied(self, name: str, pods: int, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = kubeobj.get(self.kube, "tracingpolicy", name, NS)
            status = (obj or {}).get("status") or {}
            ok = status.get("appliedPods") == status.get("targetPods") == pods
            return (
                obj
                if ok and status.get("observedGeneration") == obj["metadata"]["generation"]
                else None
            )

        return kubeobj.eventually(probe, timeout, what=f"{name} Applied {pods}/{pods}")


def _sampler(running: dict[str, Any]) -> dict[str, Any]:
    return dict(running["config"]["sampling"]["sampler"])


@pytest.fixture(scope="module")
def release(cluster: cluster_peers.Cluster, helm: Path) -> Iterator[Release]:
    state = Release(cluster, helm)
    state.install()
    try:
        yield state
    finally:
        kube = cluster.kube
        kube.kubectl_run("delete", "tp", "--all", "-n", NS, "--timeout=30s", check=False)
        incluster.helm(helm, kube, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout=60s")


def test_install_wait_runs_the_charts_pods_with_its_args_ports_and_in_cluster_auth(
    release: Release,
) -> None:
    kube = release.kube
    [operator] = incluster.ready_pods(kube, NS, OPERATOR_PODS, 1)
    gateway_pods = incluster.ready_pods(kube, NS, GATEWAY_PODS, 2)
    ips = [p["status"]["podIP"] for p in [operator, *gateway_pods]]
    assert len(set(ips)) == 3 and all(ip.startswith("127.0.0.") for ip in ips), ips
    assert {p["spec"]["nodeName"] for p in gateway_pods} <= set(release.cluster.nodes)
    manifest = list(
        yaml.safe_load_all(incluster.helm(release.helm, kube, "get", "manifest", RELEASE, "-n", NS))
    )
    deployments = {d["metadata"]["name"]: d for d in manifest if d and d["kind"] == "Deployment"}
    for pod in [operator, *gateway_pods]:
        owner = pod["metadata"]["name"].rsplit("-", 2)[0]
        [container] = deployments[owner]["spec"]["template"]["spec"]["containers"]
        argv = incluster.process_argv(pod)
        # the console script of the pod venv (its python runs it), with the chart's args
        assert argv[1] == str(Path(str(release.cluster.venv)) / "bin" / "gatetrace"), argv
        assert argv[2:] == container["args"], "the process does not run the chart's args"
    operator_argv = incluster.process_argv(operator)
    assert not any(a.startswith("--kubeconfig") for a in operator_argv)
    env = incluster.process_environ(operator)
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == (
        "127.0.0.1",
        str(kube.port),
    )


def test_a_policy_lands_on_every_gateway_replica_through_the_gt_admin_port(
    release: Release,
) -> None:
    spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.25}}}
    kubeobj.apply(release.kube, kubeobj.policy("default", NS, spec))
    running = release.converged(2)
    assert len(running) == 2
    assert all(_sampler(r)["rate"] == 0.25 for r in running.values()), running
    release.policy_applied("default", 2)


def test_scaling_to_three_re_divides_a_gateway_wide_budget(release: Release) -> None:
    budget = {
        "sampling": {
            "rateScope": "gateway",
            "sampler": {"type": "rateLimiting", "tracesPerSecond": 30},
        }
    }
    kubeobj.apply(release.kube, kubeobj.policy("default", NS, budget))
    release.policy_applied("default", 2)
    two = release.converged(2)
    assert sorted(_sampler(r)["tracesPerSecond"] for r in two.values()) == [15, 15]
    deployment = f"{RELEASE}-gatetrace-{GATEWAY}"
    release.kube.kubectl_run("scale", "deployment", deployment, "-n", NS, "--replicas=3")
    release.policy_applied("default", 3)

    def three_way() -> dict[str, dict[str, Any]] | None:
        running = release.converged(3)
        rates = sorted(_sampler(r)["tracesPerSecond"] for r in running.values())
        return running if rates == [10, 10, 10] else None

    kubeobj.eventually(three_way, 60, what="30 traces/s split three ways")
    release.kube.kubectl_run("scale", "deployment", deployment, "-n", NS, "--replicas=2")
    release.converged(2)


def test_a_deleted_pod_is_replaced_and_serves_the_configmap_before_the_operator(
    release: Release,
) -> None:
    # a per-pod config: the ConfigMap does not change when pods come and go
    spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.5}}}
    kubeobj.apply(release.kube, kubeobj.policy("default", NS, spec))
    release.policy_applied("default", 2)
    before = release.converged(2)
    victim = sorted(before)[0]
    release.kube.kubectl_run("delete", "pod", victim, "-n", NS, "--wait=false")
    want = release.configmap()
    assert want is not None

    def replaced() -> list[incluster.AdminApi] | None:
        gateways_now = release.gateways(2)
        return gateways_now if victim not in {g.name for g in gateways_now} else None

    fresh = [
        g for g in kubeobj.eventually(replaced, 90, what="replacement") if g.name not in before
    ]
    assert len(fresh) == 1
    [new] = fresh
    running = kubeobj.eventually(new.running, 30, what=f"{new.name} serving")
    assert (running["revision"], running["version"]) == (want["revision"], want["version"])
    release.policy_applied("default", 2)  # the operator has reached the new pod too
    metrics = new.metrics()
    applies = "gatetrace_config_applies_total"
    assert gateways.metric_sum(metrics, applies, source="file", outcome="applied") == 1
    # the operator's push, if any, found the revision running already
    assert gateways.metric_sum(metrics, applies, source="admin", outcome="applied") == 0
