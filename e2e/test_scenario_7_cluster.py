"""Scenario 7: the chart as a cluster runs it.

`helm install --wait` into the cluster without containers (peers/cluster.py): the
controller manager turns the chart's Deployments into Pods, the scheduler binds them
to KWOK nodes, and the pod runner runs them from the wheel with the chart's exact
args, config files, ports and probes. The operator authenticates in-cluster (its
projected service-account token, KUBERNETES_SERVICE_HOST), finds the gateway pods by
their labels and reaches each through its podIP and `gt-admin` port.
"""

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
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
    # not the default 9901: the operator must find it through the `gt-admin` port name
    "--set", "gateway.adminPort=9911",
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
        self.uninstalled = False

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

    def converged(
        self, count: int, timeout: float = 60, rate: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Waits until `count` Ready gateway pods all run the ConfigMap's revision (with
        that probabilistic `rate`, when given); what each runs, by pod name."""

        def probe() -> dict[str, dict[str, Any]] | None:
            doc = self.configmap()
            if doc is None:
                return None
            running = {g.name: g.running() for g in self.gateways(count)}
            if rate is not None and any(
                r and _sampler(r).get("rate") != rate for r in running.values()
            ):
                return None
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
        if not state.uninstalled:
            incluster.helm(helm, kube, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout=60s")
        # the operator is gone: its finalizer would keep the policies forever
        kube.kubectl_run(
            "patch", "tp", "default", "-n", NS, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip
        kube.kubectl_run("delete", "tp", "--all", "-n", NS, "--timeout=30s", check=False)


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
    for pod in gateway_pods:
        # the chart's Downward API variables, expanded into the OpenTelemetry resource
        raw = incluster.process_environ(pod)["OTEL_RESOURCE_ATTRIBUTES"]
        attributes = dict(pair.split("=", 1) for pair in raw.split(","))
        meta = pod["metadata"]
        assert attributes["k8s.pod.name"] == meta["name"]
        assert attributes["k8s.pod.uid"] == meta["uid"]
        assert attributes["k8s.namespace.name"] == NS
        assert attributes["k8s.node.name"] == pod["spec"]["nodeName"]
        assert attributes["k8s.deployment.name"] == meta["name"].rsplit("-", 2)[0]
        assert attributes["k8s.container.name"] == "gateway"
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
    # the pods may also read it from their ConfigMap volume: Applied 2/2 is the
    # operator's own confirmation through each pod's admin port
    running = release.converged(2, rate=0.25)
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
    before = release.converged(2, rate=0.5)
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


def test_the_operator_converges_across_an_api_server_and_an_etcd_restart(
    release: Release,
) -> None:
    kube = release.kube
    for restart, rate in ((kube.apiserver.restart, 0.3), (kube.etcd.restart, 0.2)):
        spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": rate}}}
        kubeobj.apply(kube, kubeobj.policy("default", NS, spec))
        restart()  # while the operator rolls the change out
        kubeobj.eventually(
            lambda: kube.get_json(f"/api/v1/namespaces/{NS}"), 30, what="API answers again"
        )
        running = release.converged(2, timeout=90, rate=rate)
        assert {_sampler(r)["rate"] for r in running.values()} == {rate}
        release.policy_applied("default", 2, timeout=90)
    # and a change made after both restarts still lands (the watches were re-listed)
    spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.15}}}
    kubeobj.apply(kube, kubeobj.policy("default", NS, spec))
    running = release.converged(2, timeout=90, rate=0.15)
    assert {_sampler(r)["rate"] for r in running.values()} == {0.15}


def _running_rate(admin: incluster.AdminApi, rate: float) -> dict[str, Any] | None:
    running = admin.running()
    return running if running is not None and _sampler(running).get("rate") == rate else None


def _operator_metric(pod: dict[str, Any], name: str) -> float:
    url = f"http://{pod['status']['podIP']}:{incluster.container_port(pod, 'metrics')}/metrics"
    with urllib.request.urlopen(url, timeout=5.0) as resp:
        return gateways.metric_sum(resp.read().decode(), name)


def test_helm_upgrade_lands_and_two_replicas_with_random_priority_one_acts(
    release: Release,
) -> None:
    kube = release.kube
    incluster.helm(
        release.helm, kube, "upgrade", RELEASE, str(kubeobj.CHART), "-n", NS, "--reuse-values",
        "--set", "operator.replicas=2",
        "--set", "operator.driftIntervalSeconds=4",
        "--set", "gateway.traceIdHeader=X-Request-Trace",
        "--wait", "--timeout=240s",
    )  # fmt: skip
    operators = incluster.ready_pods(kube, NS, OPERATOR_PODS, 2, timeout=120)
    for pod in operators:
        argv = incluster.process_argv(pod)
        assert "--drift-interval=4" in argv and "--priority=random" in argv, argv
    for pod in incluster.ready_pods(kube, NS, GATEWAY_PODS, 2, timeout=120):
        # the file the process reads through its ConfigMap subPath mount
        pid = int(pod["status"]["containerStatuses"][0]["containerID"].split("//")[1])
        seen = Path(f"/proc/{pid}/root/etc/gatetrace/gateway.yaml").read_text()
        assert yaml.safe_load(seen)["traceIdHeader"] == "X-Request-Trace"
    release.converged(2, timeout=90)
    time.sleep(3)  # both replicas have seen each other's peering record by now
    pushes = "gatetrace_operator_pushes_total"
    before = [_operator_metric(p, pushes) for p in operators]
    spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.35}}}
    kubeobj.apply(kube, kubeobj.policy("default", NS, spec))
    running = release.converged(2, timeout=90, rate=0.35)
    assert {_sampler(r)["rate"] for r in running.values()} == {0.35}
    release.policy_applied("default", 2)
    after = [_operator_metric(p, pushes) for p in operators]
    acted = [b < a for b, a in zip(before, after, strict=True)]
    assert sorted(acted) == [False, True], f"pushes by replica: {before} -> {after}"


def test_helm_uninstall_leaves_the_crd_and_the_policies_and_stops_the_pods(
    release: Release,
) -> None:
    kube = release.kube
    running = incluster.pods(kube, NS, "app.kubernetes.io/instance=" + RELEASE)
    pids = [int(p["status"]["containerStatuses"][0]["containerID"].split("//")[1]) for p in running]
    assert pids
    incluster.helm(release.helm, kube, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout=120s")
    kube.kubectl_run("get", "crd", "tracingpolicies.gatetrace.dev")  # raises when gone
    assert kubeobj.get(kube, "tracingpolicy", "default", NS) is not None

    def gone() -> bool | None:
        left = incluster.pods(kube, NS, "app.kubernetes.io/instance=" + RELEASE)
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        return True if not left and not alive else None

    kubeobj.eventually(gone, 60, what="pods deleted and their processes gone")
    release.uninstalled = True


def test_the_chart_passes_a_restricted_pod_security_dry_run(
    cluster: cluster_peers.Cluster, helm: Path
) -> None:
    kube = cluster.kube
    namespace = "gt-restricted"
    kubeobj.ensure_namespaces(kube, namespace)
    kube.kubectl_run(
        "label", "ns", namespace, "--overwrite", "pod-security.kubernetes.io/enforce=restricted"
    )
    rendered = subprocess.run(
        [str(helm), "template", "gt", str(kubeobj.CHART), "-n", namespace, *VALUES],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    # PodSecurity enforces on Pods: dry-run the Deployments' pod templates as Pods too
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"dry-{d['metadata']['name']}", "namespace": namespace},
            "spec": d["spec"]["template"]["spec"],
        }
        for d in objects
        if d["kind"] == "Deployment"
    ]
    assert len(pods) == 2
    # a Pod's dry run looks its ServiceAccount up: that one object is created for real
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    kubeobj.apply(kube, *accounts)
    for obj in [*(o for o in objects if o not in accounts), *pods]:
        out = kube.kubectl_run(
            "create", "--dry-run=server", "-n", namespace, "-f", "-",
            input=json.dumps(obj), check=False,
        )  # fmt: skip
        assert out.returncode == 0, f"{obj['kind']} {obj['metadata']['name']}: {out.stderr}"
        assert "violate" not in out.stderr, out.stderr


def test_namespaced_mode_with_roles_only(cluster: cluster_peers.Cluster, helm: Path) -> None:
    """`operator.watchNamespaces`: Roles instead of ClusterRoles, and the policy of the
    watched namespace lands on its gateways (the cluster-wide release is gone by now)."""
    kube, team = cluster.kube, "gt-team"
    release = Release(cluster, helm)
    incluster.helm(
        helm, kube, "install", "gtn", str(kubeobj.CHART), "-n", team, "--create-namespace",
        "--wait", "--timeout=240s", *VALUES, "--set", f"operator.watchNamespaces={{{team}}}",
    )  # fmt: skip
    try:
        manifest = incluster.helm(helm, kube, "get", "manifest", "gtn", "-n", team)
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        assert {"Role", "RoleBinding"} <= {d["kind"] for d in objects}
        # cluster-wide, only what kopf needs to discover: CRDs and namespaces
        cluster_wide = {
            res for d in objects if d["kind"] == "ClusterRole" for r in d["rules"]
            for res in r["resources"]
        }  # fmt: skip
        assert cluster_wide <= {"customresourcedefinitions", "namespaces"}, cluster_wide
        [operator] = incluster.ready_pods(kube, team, OPERATOR_PODS, 1)
        assert f"--namespace={team}" in incluster.process_argv(operator)
        account = f"system:serviceaccount:{team}:{operator['spec']['serviceAccountName']}"
        for namespace, want in ((team, "yes"), (NS, "no")):
            answer = kube.kubectl_run(
                "auth", "can-i", "list", "tracingpolicies", "-n", namespace, "--as", account,
                check=False,
            ).stdout.strip()  # fmt: skip
            assert answer == want, (namespace, answer)
        release.token = incluster.secret_value(kube, "gatetrace-admin-token", team, "token")
        spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.45}}}
        kubeobj.apply(kube, kubeobj.policy("default", team, spec))
        for pod in incluster.ready_pods(kube, team, GATEWAY_PODS, 2):
            admin = incluster.AdminApi(pod, release.token)
            running = kubeobj.eventually(
                partial(_running_rate, admin, 0.45), 60, what=f"{admin.name} runs rate 0.45"
            )
            assert running["config"]["sampling"]["sampler"]["rate"] == 0.45
    finally:
        kube.kubectl_run("delete", "tp", "--all", "-n", team, "--timeout=30s", check=False)
        incluster.helm(helm, kube, "uninstall", "gtn", "-n", team, "--wait", "--timeout=120s")


def test_a_pod_of_another_image_is_scheduled_but_stays_pending(
    cluster: cluster_peers.Cluster,
) -> None:
    kube, namespace = cluster.kube, "gt-other"
    kubeobj.ensure_namespaces(kube, namespace)
    kubeobj.eventually(
        lambda: kubeobj.get(kube, "serviceaccount", "default", namespace), 30, what="default SA"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": namespace},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
    }
    kubeobj.apply(kube, pod)
    bound = kubeobj.eventually(
        lambda: (
            (p := kubeobj.get(kube, "pod", "nginx", namespace)) and p["spec"].get("nodeName") and p
        ),
        30,
        what="nginx scheduled",
    )
    assert bound["spec"]["nodeName"] in cluster.nodes
    time.sleep(2)  # four passes of the runner
    seen = kubeobj.get(kube, "pod", "nginx", namespace)
    assert seen["status"]["phase"] == "Pending"
    assert "podIP" not in seen["status"] and "containerStatuses" not in seen["status"]
    kube.kubectl_run("delete", "pod", "nginx", "-n", namespace, "--grace-period=0", "--force")
