"""A Kubernetes control plane for the e2e suite: etcd + kube-apiserver on 127.0.0.1.

Like controller-runtime's envtest: no kubelet, scheduler or controller-manager. Its own
CA and certificates (`pki`), RBAC authorization, the ServiceAccount admission plugin off
(no controller creates default ServiceAccounts), no endpoint reconciler, and a
service-account issuer so TokenRequest works. Tests create Pods and patch their
`status` subresource themselves. `kubeconfig` authenticates as an admin
(O=system:masters); `kubectl_run` drives the real kubectl against it.
"""

import base64
import json
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from . import cache, pki, procs

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlane:
    """etcd + kube-apiserver; `server` is the API URL, `kubeconfig` an admin kubeconfig."""

    def __init__(self, workdir: Path, *, service_account_admission: bool = False) -> None:
        """`service_account_admission` keeps the ServiceAccount admission plugin on (a
        cluster with a controller manager: pods get their projected token volume)."""
        self.service_account_admission = service_account_admission
        self.apiserver_binary = cache.artifact("kube", "KUBE_VERSION", "bin/kube-apiserver")
        self.kubectl = cache.artifact("kube", "KUBE_VERSION", "bin/kubectl")
        etcd_binary = cache.artifact("etcd", "ETCD_DEB_VERSION", "bin/etcd")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = workdir / "kubeconfig"
        self.pki = pki.make_control_plane_pki(workdir / "pki")
        self.port = procs.free_tcp_port()
        self.etcd_port = procs.free_tcp_port()
        etcd_peer_port = procs.free_tcp_port()
        # etcd fsyncs a lot: keep its data in memory when the machine offers tmpfs
        shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp inside it
        base = shm if shm.is_dir() else workdir
        self._etcd_data = Path(tempfile.mkdtemp(prefix="gatetrace-e2e-etcd-", dir=base))
        client_url = f"http://{procs.LOOPBACK}:{self.etcd_port}"
        peer_url = f"http://{procs.LOOPBACK}:{etcd_peer_port}"
        self.etcd = procs.ManagedProcess(
            "etcd",
            [
                str(etcd_binary),
                "--name=default",
                f"--data-dir={self._etcd_data}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--logger=zap",
                "--log-outputs=stderr",
                "--log-level=warn",
            ],
            log_path=workdir / "etcd.log",
            ready=lambda: procs.http_ok(f"{client_url}/health"),
            ready_timeout=60.0,
        )
        self.apiserver = procs.ManagedProcess(
            "kube-apiserver",
            self._apiserver_argv(client_url),
            log_path=workdir / "kube-apiserver.log",
            ready=self._ready,
            ready_timeout=180.0,
        )

    @property
    def server(self) -> str:
        """The API server URL, https://127.0.0.1:<port>."""
        return f"https://{procs.LOOPBACK}:{self.port}"

    def _apiserver_argv(self, etcd_url: str) -> list[str]:
        files = self.pki
        return [
            str(self.apiserver_binary),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={procs.LOOPBACK}",
            f"--advertise-address={procs.LOOPBACK}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={files.serving.cert}",
            f"--tls-private-key-file={files.serving.key}",
            f"--client-ca-file={files.ca.cert}",
            f"--service-account-key-file={files.sa_public_key}",
            f"--service-account-signing-key-file={files.sa_signing_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            *(
                []
                if self.service_account_admission
                else ["--disable-admission-plugins=ServiceAccount"]
            ),
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--v=1",
        ]

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the CA and presents the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return context

    def _ready(self) -> bool:
        context = self.ssl_context()
        return procs.http_ok(f"{self.server}/readyz", context) and procs.http_ok(
            f"{self.server}/api/v1/namespaces/default", context
        )

    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gatetrace-e2e",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self.pki.ca.cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64(self.pki.admin.cert),
                        "client-key-data": b64(self.pki.admin.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "gatetrace-e2e",
                    "context": {"cluster": "gatetrace-e2e", "user": "admin"},
                }
            ],
            "current-context": "gatetrace-e2e",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2))
        self.kubeconfig.chmod(0o600)

    def start(self) -> Self:
        """Starts etcd, then kube-apiserver; returns once /readyz is ok and the
        kubeconfig is written."""
        self.etcd.start()
        self.apiserver.start()
        self._write_kubeconfig()
        return self

    def stop(self) -> None:
        """Stops kube-apiserver and etcd and removes etcd's data."""
        self.apiserver.stop()
        self.etcd.stop()
        shutil.rmtree(self._etcd_data, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def kubectl_run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Runs `kubectl --kubeconfig <admin> ARGS` and returns its completed process;
        with check=True a non-zero exit raises CalledProcessError (stderr included)."""
        argv = [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, argv, result.stdout, result.stderr
            )
        return result

    def get_json(self, path: str) -> object:
        """GET an API path (e.g. /api/v1/namespaces) as the admin; the parsed JSON."""
        return procs.get_json(f"{self.server}{path}", self.ssl_context())
