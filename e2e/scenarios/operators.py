"""The real kopf operator (`gatetrace operator`) as a subprocess, running as the
ServiceAccount the Helm chart defines, bound to exactly the chart's RBAC.

`install_rbac` renders the chart's ServiceAccount and RBAC objects with `helm template`
and applies them; `service_account_kubeconfig` gets a token through TokenRequest
(`kubectl create token`) and writes a kubeconfig that authenticates with it.
"""

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import yaml
from peers import controlplane, procs

from . import gateways, kubeobj

RBAC_TEMPLATES = ("templates/serviceaccount.yaml", "templates/rbac.yaml")


def render(helm: Path, release: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    """`helm template` of the chart, the objects parsed (None documents left out)."""
    out = subprocess.run(
        [str(helm), "template", release, str(kubeobj.CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def install_rbac(
    kube: controlplane.ControlPlane, helm: Path, release: str, namespace: str, *values: str
) -> tuple[str, list[dict[str, Any]]]:
    """Applies the chart's ServiceAccount + RBAC (only those); (SA name, the objects)."""
    shown = [a for t in RBAC_TEMPLATES for a in ("--show-only", t)]
    objects = render(helm, release, namespace, *shown, *values)
    kubeobj.ensure_namespaces(kube, namespace)
    kubeobj.apply(kube, *objects)
    [sa] = [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"]
    return sa, objects


def service_account_kubeconfig(
    kube: controlplane.ControlPlane, namespace: str, sa: str, path: Path
) -> Path:
    """A kubeconfig authenticating as the ServiceAccount with a TokenRequest token."""
    token = kube.kubectl_run("create", "token", sa, "-n", namespace, "--duration=2h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {
                    "server": kube.server,
                    "certificate-authority": str(kube.pki.ca.cert),
                },
            }
        ],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": sa}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def kubectl_as(
    kube: controlplane.ControlPlane, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """kubectl with another kubeconfig (e.g. the ServiceAccount's); never raises."""
    return subprocess.run(
        [str(kube.kubectl), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class OperatorProcess:
    """`gatetrace operator` against the API server, short intervals for tests."""

    def __init__(
        self,
        name: str,
        kubeconfig: Path,
        workdir: Path,
        *,
        root_namespace: str,
        token_secret: str,
        peering: str | None = None,
        priority: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.health_port = gateways.free_port(procs.LOOPBACK)
        self.metrics_port = gateways.free_port(procs.LOOPBACK)
        argv = [
            str(gateways.GATETRACE),
            "operator",
            f"--kubeconfig={kubeconfig}",
            f"--root-namespace={root_namespace}",
            f"--admin-token-secret={token_secret}",
            "--drift-interval=3",
            "--retry-interval=2",
            "--push-timeout=2",
            "--push-attempts=2",
            f"--liveness=http://{procs.LOOPBACK}:{self.health_port}/healthz",
            f"--metrics-listen={procs.LOOPBACK}:{self.metrics_port}",
            *extra,
        ]
        if peering is not None:
            argv.append(f"--peering={peering}")
        if priority is not None:
            argv.append(f"--priority={priority}")
        self.process = procs.ManagedProcess(
            f"operator-{name}",
            argv,
            log_path=workdir / f"operator-{name}.log",
            ready=lambda: procs.http_ok(f"http://{procs.LOOPBACK}:{self.health_port}/healthz"),
            ready_timeout=60.0,
        )

    def start(self) -> Self:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL, as a crashed or evicted pod: no cleanup handlers run."""
        pid = self.process.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.process.stop()

    def metrics(self) -> str:
        url = f"http://{procs.LOOPBACK}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5.0) as resp:
            text: str = resp.read().decode()
            return text

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")
