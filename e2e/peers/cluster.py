"""A cluster without containers: the control plane plus the parts that turn
Deployments into running Pods.

etcd + kube-apiserver (ServiceAccount admission on), kube-controller-manager
(deployments, replica sets, garbage collector, namespaces, service accounts,
kube-root-ca.crt), kube-scheduler, KWOK keeping fake Nodes alive (leases, Ready
condition) and the pod runner (podrunner.py) running the Pods of our image as local
processes from the wheel built from the checkout (podvenv.py).

KWOK runs with the Node stages of kwok.yaml only, so it never writes a Pod's status
(the runner does); the node lifecycle controller lifts the `not-ready` taint the API
server puts on new Nodes once KWOK reports them Ready, and would put it back if KWOK
stopped renewing their Leases.
"""

import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

import yaml

from . import cache, controlplane, podvenv, procs

E2E_DIR = Path(__file__).resolve().parents[1]
CHART_VALUES = E2E_DIR.parent / "charts" / "gatetrace" / "values.yaml"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
CAPACITY = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
CONTROLLERS = (
    "deployment,replicaset,garbagecollector,namespace,serviceaccount,root-ca-cert-publisher,"
    "nodelifecycle"
)
KWOK_CONFIG = Path(__file__).resolve().parent / "kwok.yaml"


def image_repository() -> str:
    """The chart's image repository: the pods the runner runs."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    return str(values["image"]["repository"])


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _check_mount_namespaces() -> None:
    """The pod runner binds volumes in a private mount namespace: root (or
    CAP_SYS_ADMIN) is needed; say so plainly instead of failing in every pod."""
    argv = ["unshare", "--mount", "--propagation", "private", "true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise procs.PeerStartError(
            f"the pod runner needs mount namespaces ({' '.join(argv)}: {done.stderr.strip()})"
        )


def node(name: str) -> dict[str, Any]:
    """A Node object KWOK manages (its annotation) with room for every test pod."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": labels | {"kubernetes.io/arch": "amd64"},
        },
        "status": {"capacity": CAPACITY, "allocatable": CAPACITY},
    }


class Cluster:
    """The control plane, controllers, scheduler, KWOK nodes and the pod runner."""

    def __init__(self, workdir: Path, nodes: tuple[str, ...] = ("gt-node-0", "gt-node-1")) -> None:
        self.workdir = workdir
        self.kube = controlplane.ControlPlane(workdir / "control", service_account_admission=True)
        self.nodes = nodes
        self.image_repository = image_repository()
        bins = {
            name: cache.artifact("kube-controllers", "KUBE_VERSION", f"bin/{name}")
            for name in ("kube-controller-manager", "kube-scheduler")
        }
        kwok = cache.artifact("kwok", "KWOK_VERSION", "bin/kwok")
        self.venv: Path | None = None
        self.controller_manager = self._secure(
            "kube-controller-manager",
            bins["kube-controller-manager"],
            f"--controllers={CONTROLLERS}",
            f"--root-ca-file={self.kube.pki.ca.cert}",
            "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs=2",
            "--concurrent-replicaset-syncs=2",
        )
        self.scheduler = self._secure("kube-scheduler", bins["kube-scheduler"])
        kwok_port = procs.free_tcp_port()
        self.kwok = procs.ManagedProcess(
            "kwok",
            [
                str(kwok),
                f"--kubeconfig={self.kube.kubeconfig}",
                f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
                f"--config={KWOK_CONFIG}",
                f"--server-address={procs.LOOPBACK}:{kwok_port}",
            ],
            log_path=workdir / "kwok.log",
            ready=lambda: procs.http_ok(f"http://{procs.LOOPBACK}:{kwok_port}/healthz"),
        )
        self.runner: procs.ManagedProcess | None = None

    def _secure(self, name: str, binary: Path, *extra: str) -> procs.ManagedProcess:
        port = procs.free_tcp_port()
        kubeconfig = self.kube.kubeconfig
        return procs.ManagedProcess(
            name,
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={procs.LOOPBACK}",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / (name + '-certs')}",
                "--leader-elect=false",
                "--v=1",
                *extra,
            ],
            log_path=self.workdir / f"{name}.log",
            ready=lambda: procs.http_ok(f"https://{procs.LOOPBACK}:{port}/healthz", _unverified()),
            ready_timeout=120.0,
        )

    def _runner(self, venv: Path) -> procs.ManagedProcess:
        pki = self.kube.pki
        argv = [
            sys.executable, "-m", "peers.podrunner",
            f"--server={self.kube.server}",
            f"--ca={pki.ca.cert}", f"--cert={pki.admin.cert}", f"--key={pki.admin.key}",
            *(f"--node={n}" for n in self.nodes),
            f"--image-repo={self.image_repository}",
            f"--venv={venv}",
            f"--workdir={self.workdir / 'pods'}",
        ]  # fmt: skip
        return procs.ManagedProcess(
            "podrunner",
            argv,
            log_path=self.workdir / "podrunner.log",
            ready=lambda: "running pods of" in self._runner_log(),
            env={"PYTHONPATH": str(E2E_DIR)},
            cwd=E2E_DIR,
        )

    def _runner_log(self) -> str:
        try:
            return (self.workdir / "podrunner.log").read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Self:
        """Builds (or reuses) the pod venv, starts everything, returns once the nodes
        are Ready."""
        _check_mount_namespaces()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.venv = podvenv.pod_venv()
        self.kube.start()
        self.controller_manager.start()
        self.scheduler.start()
        self.kube.kubectl_run("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [node(n) for n in self.nodes]}
        ))  # fmt: skip
        self.kwok.start()
        self.runner = self._runner(self.venv)
        self.runner.start()
        self.kube.kubectl_run(
            "wait", "--for=condition=Ready", *(f"node/{n}" for n in self.nodes), "--timeout=60s"
        )
        return self

    def stop(self) -> None:
        """Stops the runner first (it stops the pods), then the rest."""
        for part in (self.runner, self.kwok, self.scheduler, self.controller_manager):
            if part is not None:
                part.stop()
        self.kube.stop()
