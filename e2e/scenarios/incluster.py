"""Helpers for the scenarios on the cluster without containers (peers/cluster.py):
helm against it, the Pods a Deployment made, and a gateway pod's admin API reached at
the podIP and `gt-admin` port its Pod reports.
"""

import base64
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from peers import controlplane

from . import kubeobj


def helm(helm_bin: Path, kube: controlplane.ControlPlane, *args: str, timeout: float = 300) -> str:
    """helm ARGS against the cluster; its stdout (a failure raises with helm's output)."""
    argv = [str(helm_bin), *args, f"--kubeconfig={kube.kubeconfig}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"helm {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def pods(kube: controlplane.ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The Pods matching a label selector that are not being deleted."""
    out = kube.kubectl_run("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    cond = kubeobj.condition(pod, "Ready")
    return cond is not None and cond["status"] == "True"


def ready_pods(
    kube: controlplane.ControlPlane, namespace: str, selector: str, count: int, timeout: float = 90
) -> list[dict[str, Any]]:
    """Waits until exactly `count` matching pods exist and all are Ready; those pods."""

    def probe() -> list[dict[str, Any]] | None:
        found = pods(kube, namespace, selector)
        return found if len(found) == count and all(ready(p) for p in found) else None

    return kubeobj.eventually(probe, timeout, what=f"{count} Ready pods {selector}")


def container_port(pod: dict[str, Any], name: str) -> int:
    """The containerPort named `name` in the pod's spec."""
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("name") == name:
                return int(port["containerPort"])
    raise AssertionError(f"pod {pod['metadata']['name']}: no port named {name!r}")


def process_argv(pod: dict[str, Any]) -> list[str]:
    """The command line of the pod's first container process (its /proc cmdline)."""
    [status] = pod["status"]["containerStatuses"][:1]
    pid = int(str(status["containerID"]).removeprefix("podrunner://"))
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def process_environ(pod: dict[str, Any]) -> dict[str, str]:
    """The environment of the pod's first container process."""
    [status] = pod["status"]["containerStatuses"][:1]
    pid = int(str(status["containerID"]).removeprefix("podrunner://"))
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(item.split("=", 1) for item in raw if "=" in item)


def secret_value(kube: controlplane.ControlPlane, name: str, namespace: str, key: str) -> str:
    secret = kubeobj.get(kube, "secret", name, namespace)
    assert secret is not None, f"secret {namespace}/{name} is missing"
    return base64.b64decode(secret["data"][key]).decode()


class AdminApi:
    """A gateway pod's admin API at http://<podIP>:<gt-admin port>."""

    def __init__(self, pod: dict[str, Any], token: str) -> None:
        self.name = pod["metadata"]["name"]
        self.url = f"http://{pod['status']['podIP']}:{container_port(pod, 'gt-admin')}"
        self.token = token

    def get(self, path: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5.0) as resp:  # noqa: S310
            return json.load(resp)

    def running(self) -> dict[str, Any] | None:
        """`GET /admin/v1/tracing`; None while nothing is loaded (404) or unreachable."""
        try:
            found: dict[str, Any] = self.get("/admin/v1/tracing")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        except OSError:
            return None
        return found

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5.0) as resp:  # noqa: S310
            text: str = resp.read().decode()
            return text
