"""The pod runner: a kubelet for our image only, with local processes for containers.

    python -m peers.podrunner --server URL --ca CA --cert CRT --key KEY \\
        --node NODE [--node NODE...] --image-repo REPO --venv DIR --workdir DIR

Every half second it lists the Pods bound to its nodes. A Pod whose containers all
run REPO's image gets, like a kubelet would give it:

- a unique loopback address 127.0.0.x as its podIP (binds to 0.0.0.0 land there, see
  podshim/sitecustomize.py), hostIP 127.0.0.1;
- its volumes in a folder of their own, ConfigMaps/Secrets/projected sources kept in
  sync on updates with the kubelet's `..data` symlink swap (podvolumes.py); the
  projected service-account token comes from TokenRequest, bound to the pod;
- each container as a process of the pod venv (the wheel built from the checkout):
  command/args, env incl. the downward API and KUBERNETES_SERVICE_HOST/PORT (the real
  API server), and its volumeMounts bound at their mountPath in a private mount
  namespace (`unshare --mount`; paths the host lacks get a private overlay);
- readiness and liveness probes, reported as the Ready/ContainersReady conditions and
  containerStatuses; exited containers restart (restartCount, lastState), and a
  failing liveness probe restarts them too;
- on deletion, SIGTERM to every container, SIGKILL after the grace period, then the
  final delete of the Pod object.

Any other Pod stays Pending: the runner never touches it. Processes run as root (the
pod's runAsUser is not applied). Pods' status is the runner's alone: KWOK only keeps
the Nodes alive (see cluster.py).
"""

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import podprobes, podspec, podvolumes, procs

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SHIM = Path(__file__).resolve().parent / "podshim"
ALLOCATABLE = {"cpu": "32", "memory": "64Gi", "ephemeral-storage": "100Gi"}


def log(message: str) -> None:
    print(f"[podrunner {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    """The few API calls the runner makes, as JSON over HTTPS."""

    def __init__(self, server: str, context: ssl.SSLContext) -> None:
        self.server = server
        self.context = context

    def call(
        self, method: str, path: str, body: object = None, content_type: str = "application/json"
    ) -> Any:
        """The parsed answer; None on 404."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - https to the test API server
            self.server + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as resp:  # noqa: S310
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise


class Container:
    """One container of a running pod: its process, restarts and probes."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.name = str(spec["name"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = ""
        self.last_state: dict[str, Any] = {}
        self.next_start = 0.0
        self.readiness: podprobes.ProbeState | None = None
        self.liveness: podprobes.ProbeState | None = None

    def start(self, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=procs._die_with_parent,
            )
        self.started_at = _now_rfc3339()
        started = podprobes.now()
        ready, live = self.spec.get("readinessProbe"), self.spec.get("livenessProbe")
        self.readiness = podprobes.ProbeState(ready, started) if ready else None
        self.liveness = podprobes.ProbeState(live, started) if live else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ready(self) -> bool:
        return self.running and (self.readiness is None or self.readiness.ok)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def reap(self) -> int | None:
        """The exit code when the process has just ended (it is then forgotten)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of its group
        self.last_state = {
            "terminated": {
                "exitCode": code if code >= 0 else 128 - code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": self.started_at,
                "finishedAt": _now_rfc3339(),
            }
        }
        self.proc = None
        return code

    def status(self, image: str) -> dict[str, Any]:
        if self.running:
            assert self.proc is not None
            state: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        else:
            state = {
                "waiting": {"reason": "CrashLoopBackOff" if self.restarts else "ContainerCreating"}
            }
        return {
            "name": self.name,
            "image": image,
            "imageID": f"podrunner://{image}",
            "containerID": f"podrunner://{self.proc.pid}" if self.proc else "",
            "ready": self.ready,
            "started": self.running,
            "restartCount": self.restarts,
            "state": state,
            "lastState": self.last_state,
        }


class PodRun:
    """One of our pods on this node: its folder, address, volumes and containers."""

    def __init__(self, runner: "Runner", pod: Mapping[str, Any], ip: str) -> None:
        self.runner = runner
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.ip = ip
        self.dir = (
            runner.workdir
            / f"{pod['metadata']['namespace']}_{pod['metadata']['name']}_{self.uid[:8]}"
        )
        self.containers = [Container(c) for c in pod["spec"]["containers"]]
        self.stop_deadline: float | None = None
        self.token: bytes | None = None
        self.sent_status: dict[str, Any] | None = None
        self.transitions: dict[str, tuple[str, str]] = {}
        self.started = _now_rfc3339()

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    # --- volumes ---------------------------------------------------------------
    def _lookup(self, kind: str, name: str) -> Mapping[str, Any] | None:
        plural = {"configmap": "configmaps", "secret": "secrets"}[kind]
        found: Mapping[str, Any] | None = self.runner.api.call(
            "GET", f"/api/v1/namespaces/{self.namespace}/{plural}/{name}"
        )
        return found

    def _field(self, item: Mapping[str, Any]) -> str:
        if "fieldRef" in item:
            return podspec.field_value(self._with_ip(), item["fieldRef"]["fieldPath"])
        ref = item["resourceFieldRef"]
        default = ALLOCATABLE.get(str(ref["resource"]).partition(".")[2], "0")
        return podspec.resource_value(self.pod, ref, default)

    def _token(self, source: Mapping[str, Any]) -> bytes:
        if self.token is None:
            sa = self.pod["spec"].get("serviceAccountName") or "default"
            spec: dict[str, Any] = {
                "expirationSeconds": int(source.get("expirationSeconds", 3607)),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.name,
                    "uid": self.uid,
                },
            }
            if source.get("audience"):
                spec["audiences"] = [source["audience"]]
            answer = self.runner.api.call(
                "POST",
                f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{sa}/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
            self.token = str(answer["status"]["token"]).encode()
        return self.token

    def sync_volumes(self) -> None:
        """Writes every volume's current content (kubelet's atomic update when changed)."""
        for volume in self.pod["spec"].get("volumes") or []:
            folder = self.dir / "volumes" / volume["name"]
            files = podvolumes.volume_files(
                volume, self.namespace, self._lookup, self._field, self._token
            )
            if files is None:
                folder.mkdir(parents=True, exist_ok=True)
            elif podvolumes.write_atomic(folder, files) and self.containers[0].started_at:
                log(f"{self.namespace}/{self.name}: volume {volume['name']} updated")

    def _with_ip(self) -> dict[str, Any]:
        status = dict(self.pod.get("status") or {}) | {
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "hostIP": procs.LOOPBACK,
        }
        return dict(self.pod) | {"status": status}

    # --- containers ------------------------------------------------------------
    def _mounts(self, container: Mapping[str, Any]) -> list[tuple[Path, str, bool, bool]]:
        mounts = []
        for mount in container.get("volumeMounts") or []:
            folder = self.dir / "volumes" / mount["name"]
            read_only = bool(mount.get("readOnly"))
            if mount.get("subPath"):
                source = podvolumes.subpath_source(folder, mount["subPath"])
                mounts.append((source, mount["mountPath"], source.is_file(), read_only))
            else:
                mounts.append((folder, mount["mountPath"], False, read_only))
        return mounts

    def start_container(self, container: Container) -> None:
        spec = container.spec
        env = podspec.environment(
            self._with_ip(), spec, self._lookup,
            api_host=self.runner.api_host, api_port=self.runner.api_port, allocatable=ALLOCATABLE,
        )  # fmt: skip
        env["PATH"] = f"{self.runner.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        env["PYTHONPATH"] = str(self.runner.shim)
        env["GATETRACE_POD_IP"] = self.ip
        argv = podspec.argv(spec, self.runner.venv / "bin")
        script = podvolumes.mount_script(self._mounts(spec), self.dir / "overlays", argv)
        if spec.get("workingDir"):
            script = script.replace("exec ", f"cd {spec['workingDir']} && exec ", 1)
        (self.dir / "overlays").mkdir(parents=True, exist_ok=True)
        shell = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
        container.start(shell, env, self.dir / f"{container.name}.log")
        log(f"{self.namespace}/{self.name}/{container.name}: started {argv} on {self.ip}")

    def tick(self, now: float) -> None:
        """Restarts exited containers (with back-off) and runs the probes that are due."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for container in self.containers:
            code = container.reap()
            if code is not None:
                log(f"{self.namespace}/{self.name}/{container.name}: exited with {code}")
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    container.restarts += 1
                    container.next_start = now + min(10.0, 2.0 ** (container.restarts - 1))
                else:
                    container.next_start = float("inf")
            if (
                container.proc is None
                and now >= container.next_start
                and self.stop_deadline is None
            ):
                self.start_container(container)
            self._probe(container, now)

    def _probe(self, container: Container, now: float) -> None:
        pid = container.proc.pid if container.proc else None
        for state in (container.readiness, container.liveness):
            if state is not None and container.running and state.due(now):
                state.record(podprobes.run_probe(state.spec, container.spec, self.ip, pid), now)
        if container.liveness is not None and container.liveness.failed and container.running:
            log(f"{self.namespace}/{self.name}/{container.name}: liveness failed, restarting")
            container.liveness.failures = 0
            container.signal(signal.SIGTERM)

    def terminate(self, grace: float) -> None:
        """SIGTERM every container; SIGKILL follows at the deadline (see `stopped`)."""
        if self.stop_deadline is None:
            self.stop_deadline = podprobes.now() + grace
            for container in self.containers:
                container.signal(signal.SIGTERM)

    def stopped(self) -> bool:
        """True once every container has exited (SIGKILLed past the deadline)."""
        assert self.stop_deadline is not None
        if podprobes.now() > self.stop_deadline:
            for container in self.containers:
                container.signal(signal.SIGKILL)
        for container in self.containers:
            if container.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    container.proc.wait(0.05)
        return all(c.proc is None or c.proc.poll() is not None for c in self.containers)

    # --- status ----------------------------------------------------------------
    def _condition(self, kind: str, ok: bool) -> dict[str, Any]:
        value = "True" if ok else "False"
        if self.transitions.get(kind, ("", ""))[0] != value:
            self.transitions[kind] = (value, _now_rfc3339())
        return {"type": kind, "status": value, "lastTransitionTime": self.transitions[kind][1]}

    def status(self) -> dict[str, Any]:
        ready = all(c.ready for c in self.containers) and self.stop_deadline is None
        image = {c.name: str(c.spec["image"]) for c in self.containers}
        return {
            "phase": "Running",
            "hostIP": procs.LOOPBACK,
            "hostIPs": [{"ip": procs.LOOPBACK}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.started,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition("Initialized", True),
                self._condition("ContainersReady", ready),
                self._condition("Ready", ready),
            ],
            "containerStatuses": [c.status(image[c.name]) for c in self.containers],
        }


class Runner:
    """The loop: list the nodes' pods, start ours, keep them running, report status."""

    def __init__(self, args: argparse.Namespace) -> None:
        context = ssl.create_default_context(cafile=args.ca)
        context.load_cert_chain(args.cert, args.key)
        self.api = Api(args.server, context)
        parsed = urllib.parse.urlsplit(args.server)
        self.api_host, self.api_port = str(parsed.hostname), int(parsed.port or 443)
        self.nodes: list[str] = args.node
        self.repository: str = args.image_repo
        self.venv = Path(args.venv)
        self.shim = self.venv / "podshim"
        """The shim's copy beside the pod venv: a checkout under /tmp (CI clones there) is
        hidden inside a pod whose chart mounts an emptyDir at /tmp."""
        self.shim.mkdir(exist_ok=True)
        shutil.copy2(SHIM / "sitecustomize.py", self.shim / "sitecustomize.py")
        self.workdir = Path(args.workdir)
        self.runs: dict[str, PodRun] = {}
        self.addresses = [f"127.0.0.{n}" for n in range(args.first_ip, args.first_ip + 100)]
        self._next_address = 0
        self.stopping = False

    def _address(self) -> str:
        used = {run.ip for run in self.runs.values()}
        for _ in self.addresses:
            ip = self.addresses[self._next_address % len(self.addresses)]
            self._next_address += 1
            if ip not in used:
                return ip
        raise RuntimeError("no free pod address left")

    def _pods(self) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = []
        for node in self.nodes:
            selector = urllib.parse.quote(f"spec.nodeName={node}")
            found = self.api.call("GET", f"/api/v1/pods?fieldSelector={selector}")
            pods += found["items"]
        return pods

    def sync(self) -> None:
        """One pass over the nodes' pods."""
        seen: set[str] = set()
        for pod in self._pods():
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            if not podspec.is_ours(pod, self.repository):
                continue  # not our image: stays Pending
            run = self.runs.get(uid)
            if run is None:
                if pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get(
                    "phase"
                ) in ("Succeeded", "Failed"):
                    continue
                run = self.runs[uid] = PodRun(self, pod, self._address())
                log(
                    f"{run.namespace}/{run.name}: admitted on {pod['spec']['nodeName']} as {run.ip}"
                )
            run.pod = pod
            self._sync_pod(run)
        for uid in list(self.runs):
            if uid not in seen:  # force-deleted: the object is gone already
                run = self.runs[uid]
                run.terminate(0.0)
                if run.stopped():
                    del self.runs[uid]

    def _sync_pod(self, run: PodRun) -> None:
        meta = run.pod["metadata"]
        if meta.get("deletionTimestamp"):
            run.terminate(float(meta.get("deletionGracePeriodSeconds") or 0))
            if run.stopped():
                self._finish(run)
            return
        try:
            run.sync_volumes()
        except podvolumes.VolumeError as exc:
            log(f"{run.namespace}/{run.name}: waiting: {exc}")
            return
        run.tick(podprobes.now())
        status = run.status()
        if status != run.sent_status:
            self.api.call(
                "PATCH",
                f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/status",
                {"status": status},
                "application/strategic-merge-patch+json",
            )
            run.sent_status = status

    def _finish(self, run: PodRun) -> None:
        """The kubelet's last word: the pod object goes once its processes are gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": run.uid}}  # fmt: skip
        self.api.call("DELETE", f"/api/v1/namespaces/{run.namespace}/pods/{run.name}", body)
        log(f"{run.namespace}/{run.name}: stopped and deleted")
        del self.runs[run.uid]

    def loop(self, period: float = 0.5) -> None:
        while not self.stopping:
            try:
                self.sync()
            except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
                log(f"sync failed (will retry): {exc!r}")
            time.sleep(period)
        for run in list(self.runs.values()):
            run.terminate(5.0)
        deadline = podprobes.now() + 6.0
        while podprobes.now() < deadline and not all(r.stopped() for r in self.runs.values()):
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="podrunner", description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--node", action="append", required=True)
    parser.add_argument("--image-repo", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--first-ip", type=int, default=100)
    runner = Runner(parser.parse_args(argv))

    def stop(signum: int, frame: object) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"running pods of {runner.repository} on nodes {runner.nodes}")
    runner.loop()


if __name__ == "__main__":
    main()
