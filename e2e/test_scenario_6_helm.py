"""Scenario 6: the Helm chart against the real API server.

`helm lint --strict`; `helm template` (CRDs included) piped to `kubectl apply
--dry-run=server` for the default values and for the gateway-enabled values (the API
server validates every object, admission included, without storing it); and a real
`helm install` + `helm upgrade` + `helm uninstall` keeping the generated admin-token
Secret (the same token after the upgrade, still there after the uninstall).
"""

import base64
import subprocess
from pathlib import Path

import pytest
import yaml
from peers import servers
from scenarios import kubeobj

pytestmark = pytest.mark.e2e

VALUE_SETS = {
    "default": [],
    "gateway": ["--set", "gateway.enabled=true"],
    # the gateway's metrics port (on by default) and the opt-in read-only query port:
    # their NetworkPolicy rules and the query Service
    "gateway-query": ["--set", "gateway.enabled=true", "--set", "gateway.queryApi.enabled=true"],
    "gateway-replicas": [
        "--set",
        "gateway.enabled=true",
        "--set",
        "operator.replicas=2",
        "--set",
        "operator.watchNamespaces={helm-watched}",
    ],
}


def _helm(helm: Path, kube: servers.ControlPlane | None, *args: str) -> str:
    argv = [str(helm), *args]
    if kube is not None:
        argv.append(f"--kubeconfig={kube.kubeconfig}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"helm {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.mark.parametrize("values", list(VALUE_SETS), ids=list(VALUE_SETS))
def test_lint_strict(helm: Path, values: str) -> None:
    out = _helm(helm, None, "lint", "--strict", str(kubeobj.CHART), *VALUE_SETS[values])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", list(VALUE_SETS), ids=list(VALUE_SETS))
def test_template_passes_a_server_side_dry_run(
    helm: Path, kube: servers.ControlPlane, values: str
) -> None:
    namespace = "helm-dry"
    kubeobj.ensure_namespaces(kube, namespace, "helm-watched")
    rendered = _helm(
        helm,
        None,
        "template",
        "gt",
        str(kubeobj.CHART),
        "--namespace",
        namespace,
        "--include-crds",
        *VALUE_SETS[values],
    )
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Secret"} <= kinds
    if values != "default":
        assert {"ConfigMap", "NetworkPolicy", "Service"} <= kinds
    # CRDs first: the dry run of a ClusterKopfPeering needs its CRD to exist
    kube.kubectl_run("apply", "-f", str(kubeobj.PEERING_CRDS))
    kubeobj.ensure_crds(kube, peering=True)
    out = kube.kubectl_run("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert out.returncode == 0, out.stderr
    created = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(created) == sum(1 for d in yaml.safe_load_all(rendered) if d)
    assert all("(server dry run)" in line for line in created), out.stdout
    # nothing was stored
    deployments = kube.kubectl_run("get", "deployments", "-n", namespace, "-o", "name")
    assert deployments.stdout.strip() == ""


def _token(kube: servers.ControlPlane, namespace: str) -> str:
    secret = kubeobj.get(kube, "secret", "gatetrace-admin-token", namespace)
    assert secret is not None, "the admin token Secret is missing"
    return base64.b64decode(secret["data"]["token"]).decode()


def test_install_upgrade_uninstall_keep_the_admin_token(
    helm: Path, kube: servers.ControlPlane
) -> None:
    namespace = "helm-live"
    kubeobj.ensure_crds(kube, peering=True)
    _helm(helm, kube, "install", "gt", str(kubeobj.CHART), "-n", namespace, "--create-namespace")
    first = _token(kube, namespace)
    assert len(first) == 48
    deployment = kubeobj.get(kube, "deployment", "gt-gatetrace-operator", namespace) or kubeobj.get(
        kube, "deployment", "gt-gatetrace", namespace
    )
    assert deployment is not None, "the operator Deployment was not installed"

    _helm(
        helm,
        kube,
        "upgrade",
        "gt",
        str(kubeobj.CHART),
        "-n",
        namespace,
        "--set",
        "gateway.enabled=true",
        "--set",
        "operator.replicas=2",
    )
    assert _token(kube, namespace) == first
    history = _helm(helm, kube, "history", "gt", "-n", namespace, "-o", "yaml")
    assert [h["revision"] for h in yaml.safe_load(history)] == [1, 2]

    _helm(helm, kube, "uninstall", "gt", "-n", namespace)
    assert _token(kube, namespace) == first, "helm.sh/resource-policy: keep was not honoured"
    assert kubeobj.get(kube, "deployment", deployment["metadata"]["name"], namespace) is None
