"""Scenario 2: the operator runs as the chart's ServiceAccount, bound to exactly the
RBAC objects `helm template` renders, with a token from the TokenRequest API
(`kubectl create token`). It works (a policy is applied to a real gateway, status,
ConfigMap and Event written), and the same identity is denied what it should not have.
"""

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import servers
from scenarios import gateways, kubeobj, operators

pytestmark = pytest.mark.e2e

SYSTEM, ROOT, GW_NS = "rbac-system", "rbac-root", "rbac-gw"
RELEASE = "gt-rbac"


class Identity:
    def __init__(self, kube: servers.ControlPlane, sa: str, kubeconfig: Path) -> None:
        self.kube, self.sa, self.kubeconfig = kube, sa, kubeconfig
        self.username = f"system:serviceaccount:{SYSTEM}:{sa}"

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        where = ["-n", namespace] if namespace else ["--all-namespaces"]
        out = operators.kubectl_as(
            self.kube, self.kubeconfig, "auth", "can-i", verb, resource, *where
        )
        answer = out.stdout.strip()
        assert answer in ("yes", "no"), (verb, resource, out.stdout, out.stderr)
        return answer == "yes"


@pytest.fixture(scope="module")
def rendered(kube: servers.ControlPlane, helm: Path) -> tuple[str, list[dict[str, Any]]]:
    kubeobj.ensure_crds(kube)
    kubeobj.ensure_namespaces(kube, SYSTEM, ROOT, GW_NS)
    return operators.install_rbac(kube, helm, RELEASE, SYSTEM)


@pytest.fixture(scope="module")
def identity(
    kube: servers.ControlPlane,
    rendered: tuple[str, list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Identity:
    sa, _ = rendered
    path = tmp_path_factory.mktemp("rbac") / "sa.kubeconfig"
    return Identity(kube, sa, operators.service_account_kubeconfig(kube, SYSTEM, sa, path))


def _subjects_bound(kube: servers.ControlPlane, username_sa: tuple[str, str]) -> set[str]:
    """Every (Cluster)RoleBinding on the server that names the ServiceAccount."""
    namespace, name = username_sa
    found = set()
    for kind in ("clusterrolebindings", "rolebindings"):
        listing = json.loads(kube.kubectl_run("get", kind, "-A", "-o", "json").stdout)
        for item in listing["items"]:
            for subject in item.get("subjects") or ():
                if (
                    subject.get("kind") == "ServiceAccount"
                    and subject.get("name") == name
                    and subject.get("namespace") == namespace
                ):
                    meta = item["metadata"]
                    found.add(f"{item['kind']}/{meta.get('namespace', '')}/{meta['name']}")
    return found


def test_the_identity_is_bound_to_exactly_the_rendered_rbac(
    kube: servers.ControlPlane, rendered: tuple[str, list[dict[str, Any]]], identity: Identity
) -> None:
    sa, objects = rendered
    bindings = {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
        for o in objects
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
    }
    assert bindings, "the chart renders no bindings"
    assert _subjects_bound(kube, (SYSTEM, sa)) == bindings
    for role in (o for o in objects if o["kind"] in ("ClusterRole", "Role")):
        meta = role["metadata"]
        kind = role["kind"].lower()
        where = ["-n", meta["namespace"]] if "namespace" in meta else []
        live = json.loads(kube.kubectl_run("get", kind, meta["name"], *where, "-o", "json").stdout)
        assert live["rules"] == role["rules"], meta["name"]
    whoami = operators.kubectl_as(kube, identity.kubeconfig, "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == identity.username


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "secrets"),
        ("delete", "configmaps"),
        ("update", "configmaps"),
        ("create", "pods"),
        ("delete", "pods"),
        ("patch", "pods"),
        ("update", "pods/status"),
        ("create", "tracingpolicies.gatetrace.dev"),
        ("delete", "tracingpolicies.gatetrace.dev"),
        ("update", "tracingpolicies.gatetrace.dev"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "serviceaccounts/token"),
        ("list", "nodes"),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "clusterkopfpeerings.kopf.dev"),  # one replica: no peering rights
    ],
)
def test_the_identity_is_denied_what_it_should_not_have(
    identity: Identity, verb: str, resource: str
) -> None:
    assert not identity.can(verb, resource, GW_NS)


def test_the_identity_has_what_the_operator_needs(identity: Identity) -> None:
    # positive controls: the denials above are not an identity that can do nothing
    for verb, resource in [
        ("watch", "tracingpolicies.gatetrace.dev"),
        ("patch", "tracingpolicies.gatetrace.dev/status"),
        ("watch", "pods"),
        ("get", "secrets"),
        ("patch", "configmaps"),
        ("create", "events"),
    ]:
        assert identity.can(verb, resource, GW_NS), (verb, resource)


@pytest.fixture
def gateway(
    kube: servers.ControlPlane, tmp_path: Path
) -> Iterator[tuple[gateways.GatewayProcess, str]]:
    token = secrets.token_urlsafe(24)
    kubeobj.admin_token_secret(kube, SYSTEM, "gatetrace-admin-token", token)
    with gateways.Upstream() as upstream:
        routes = [{"name": "app", "prefix": "/", "upstream": upstream.url}]
        process = gateways.GatewayProcess(
            "rbac-gw-0", "127.0.0.31", tmp_path, token=token, routes=routes
        ).start()
        try:
            pod = kubeobj.gateway_pod("gw-0", GW_NS, "edge", process.admin_port, {})
            kubeobj.apply(kube, pod)
            kubeobj.set_pod_status(kube, "gw-0", GW_NS, process.ip)
            yield process, token
        finally:
            process.stop()
            kubeobj.delete(kube, "pod", "gw-0", GW_NS)


def test_the_operator_works_as_that_identity_and_forbidden_calls_fail(
    kube: servers.ControlPlane,
    identity: Identity,
    gateway: tuple[gateways.GatewayProcess, str],
    tmp_path: Path,
) -> None:
    process, _ = gateway
    operator = operators.OperatorProcess(
        "rbac",
        identity.kubeconfig,
        tmp_path,
        root_namespace=ROOT,
        token_secret=f"{SYSTEM}/gatetrace-admin-token",
    ).start()
    spec = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [{"type": "memory"}],
    }
    try:
        kubeobj.apply(kube, kubeobj.policy("default", ROOT, spec))

        def applied() -> dict[str, Any] | None:
            obj = kubeobj.get(kube, "tracingpolicy", "default", ROOT)
            cond = kubeobj.condition(obj or {}, "Applied")
            return obj if cond and cond["status"] == "True" else None

        obj = kubeobj.eventually(applied, 30.0, what="policy Applied as the ServiceAccount")
        assert (obj["status"]["appliedPods"], obj["status"]["targetPods"]) == (1, 1)
        cm = kubeobj.get(kube, "configmap", "gatetrace-edge", GW_NS)
        assert cm is not None
        assert json.loads(cm["data"]["tracing.json"])["revision"] == process.revision()
        assert kubeobj.events_for(kube, "default", ROOT), "no Event written"
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log[-2000:]

        # the same credentials, used for what the chart does not grant
        for args in (
            ["get", "secrets", "-n", GW_NS],
            ["delete", "tracingpolicy", "default", "-n", ROOT],
            ["delete", "pod", "gw-0", "-n", GW_NS],
            ["create", "secret", "generic", "stolen", "-n", "kube-system"],
            ["delete", "configmap", "gatetrace-edge", "-n", GW_NS],
        ):
            out = operators.kubectl_as(kube, identity.kubeconfig, *args)
            assert out.returncode != 0, args
            assert "forbidden" in out.stderr.lower(), (args, out.stderr)
        assert kubeobj.get(kube, "tracingpolicy", "default", ROOT) is not None
        assert kubeobj.get(kube, "configmap", "gatetrace-edge", GW_NS) is not None
    finally:
        kube.kubectl_run("delete", "tp", "default", "-n", ROOT, "--timeout=30s", check=False)
        operator.stop()
        kube.kubectl_run(
            "patch", "tp", "default", "-n", ROOT, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip
