"""Kubernetes objects for the scenarios, through the real kubectl (admin kubeconfig).

There is no kubelet: a gateway "pod" is a Pod object whose status the tests patch
through the status subresource (phase Running, Ready, podIP = a 127.0.0.x address),
as KWOK does; the process behind that address is a real `gatetrace gateway`.
"""

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from peers import controlplane

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
CHART = REPO / "charts" / "gatetrace"
PEERING_CRDS = CHART / "crds" / "kopfpeerings.kopf.dev.yaml"
POLICY_API = "gatetrace.dev/v1alpha1"


def eventually(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Polls `probe` until it returns something other than None (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or probe}: not true after {timeout}s")
        time.sleep(0.2)


def apply(kube: controlplane.ControlPlane, *objects: Mapping[str, Any]) -> str:
    """`kubectl apply -f -` of the objects (a v1 List); kubectl's output."""
    doc = {"apiVersion": "v1", "kind": "List", "items": [dict(o) for o in objects]}
    return kube.kubectl_run("apply", "-f", "-", input=json.dumps(doc)).stdout


def ensure_namespaces(kube: controlplane.ControlPlane, *names: str) -> None:
    apply(
        kube, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names)
    )


def ensure_crds(kube: controlplane.ControlPlane, *, peering: bool = False) -> None:
    """The TracingPolicy CRD (and kopf's peering CRDs), applied and Established."""
    names = ["crd/tracingpolicies.gatetrace.dev"]
    if peering:
        names += ["crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev"]
    deadline = time.monotonic() + 120
    while True:
        # an earlier scenario may have deleted a CRD: applying to one still terminating is a
        # no-op, so apply again once it is gone
        kube.kubectl_run("apply", "-f", str(CRD_DIR))
        if peering:
            kube.kubectl_run("apply", "-f", str(PEERING_CRDS))
        done = kube.kubectl_run(
            "wait", "--for=condition=Established", *names, "--timeout=20s", check=False
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"CRDs not Established: {done.stderr.strip()}")
        time.sleep(1)


def get(kube: controlplane.ControlPlane, kind: str, name: str, namespace: str) -> Any:
    """The object as JSON, or None when it does not exist."""
    out = kube.kubectl_run("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if out.returncode != 0:
        if "NotFound" in out.stderr:
            return None
        raise subprocess.CalledProcessError(out.returncode, out.args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def delete(kube: controlplane.ControlPlane, kind: str, name: str, namespace: str) -> None:
    kube.kubectl_run("delete", kind, name, "-n", namespace, "--ignore-not-found", "--wait=false")


def policy(
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "apiVersion": POLICY_API,
        "kind": "TracingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


def gateway_pod(
    name: str, namespace: str, gateway: str, admin_port: int, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A gateway Pod object (labelled for the operator, admin port annotated)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"gatetrace.dev/gateway": gateway, **labels},
            "annotations": {"gatetrace.dev/admin-port": str(admin_port)},
        },
        "spec": {"containers": [{"name": "gateway", "image": "gatetrace/gateway:e2e"}]},
    }


def set_pod_status(
    kube: controlplane.ControlPlane, name: str, namespace: str, ip: str, *, ready: bool = True
) -> None:
    """What a kubelet would report: Running, the Ready condition, the pod IP."""
    status = {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
    }
    kube.kubectl_run(
        "patch",
        "pod",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


def admin_token_secret(
    kube: controlplane.ControlPlane, namespace: str, name: str, token: str
) -> None:
    apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"token": token},
        },
    )


def events_for(kube: controlplane.ControlPlane, name: str, namespace: str) -> list[dict[str, Any]]:
    """Events whose involvedObject is the TracingPolicy `name`."""
    out = kube.kubectl_run(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name},involvedObject.kind=TracingPolicy",
        "-o",
        "json",
    )
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None
