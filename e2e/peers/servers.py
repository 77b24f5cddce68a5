"""The e2e peer servers, started as subprocesses on 127.0.0.1 (not part of gatetrace).

Binaries come from the versioned cache that `e2e/peers/build-all` fills
(`$GATETRACE_PEERS_DIR`, default `~/.cache/gatetrace-peers`, one `<name>-<version>/`
folder per peer, versions in `versions.sh`). A peer that is not built raises
`PeerMissingError`. Each server picks free ports, waits until it is ready, and can be
stopped and started again on the same ports (`stop()`, `start()`, `restart()`);
each is also a context manager. `ControlPlane` (etcd + kube-apiserver) comes from
`controlplane`, the cache lookups (`PeerMissingError`, `helm_binary`) from `cache`.
"""

import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import cache, controlplane, pki, procs

PEERS_SRC = cache.PEERS_SRC
PeerMissingError = cache.PeerMissingError
ControlPlane = controlplane.ControlPlane
helm_binary = cache.helm_binary
versions = cache.versions


class _Server:
    """Shared start/stop/context-manager behaviour around one ManagedProcess."""

    process: procs.ManagedProcess

    def start(self) -> Self:
        """Starts the server and waits until it is ready."""
        self.process.start()
        return self

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL) and waits for it to exit."""
        self.process.stop()

    def restart(self) -> None:
        """Stops and starts the server again on the same ports."""
        self.process.restart()

    @property
    def running(self) -> bool:
        """True while the server process lives."""
        return self.process.running

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _url(port: int) -> str:
    return f"http://{procs.LOOPBACK}:{port}"


class Jaeger(_Server):
    """Jaeger v2 with in-memory storage, configured by e2e/peers/jaeger.yaml.

    `agent_port`: thrift compact over UDP (Jaeger's 6831); `collector_url`: thrift over
    HTTP (POST, Jaeger's 14268 /api/traces); `otlp_http_url`: OTLP/HTTP base URL (POST
    `/v1/traces`); `query_url`: the query API base URL (Jaeger's 16686, `/api/traces/{id}`).
    """

    def __init__(self, workdir: Path) -> None:
        binary = cache.artifact("jaeger", "JAEGER_VERSION", "bin/jaeger")
        self.agent_port = procs.free_udp_port()
        self.collector_port = procs.free_tcp_port()
        self.otlp_port = procs.free_tcp_port()
        self.query_port = procs.free_tcp_port()
        self.query_grpc_port = procs.free_tcp_port()
        env = {
            "JAEGER_AGENT_COMPACT_PORT": str(self.agent_port),
            "JAEGER_COLLECTOR_HTTP_PORT": str(self.collector_port),
            "JAEGER_OTLP_HTTP_PORT": str(self.otlp_port),
            "JAEGER_QUERY_HTTP_PORT": str(self.query_port),
            "JAEGER_QUERY_GRPC_PORT": str(self.query_grpc_port),
        }
        self.process = procs.ManagedProcess(
            "jaeger",
            [str(binary), "--config", str(PEERS_SRC / "jaeger.yaml")],
            env=env,
            log_path=workdir / "jaeger.log",
            ready=self._ready,
            ready_timeout=60.0,
        )

    @property
    def collector_url(self) -> str:
        """Thrift-over-HTTP span endpoint (POST application/x-thrift)."""
        return f"{_url(self.collector_port)}/api/traces"

    @property
    def otlp_http_url(self) -> str:
        """OTLP/HTTP base URL; traces go to `{otlp_http_url}/v1/traces`."""
        return _url(self.otlp_port)

    @property
    def query_url(self) -> str:
        """Query API base URL (`/api/traces/{traceID}`, `/api/services`, ...)."""
        return _url(self.query_port)

    def get_trace(self, trace_id: str) -> dict[str, Any] | None:
        """The query API's JSON for one trace, or None while Jaeger does not know it."""
        found = procs.get_json(f"{self.query_url}/api/traces/{trace_id}")
        if found is None:
            return None
        if not isinstance(found, dict):
            raise TypeError(f"jaeger /api/traces/{trace_id}: expected an object, got {found!r}")
        return found

    def _ready(self) -> bool:
        return (
            procs.http_ok(f"{self.query_url}/api/services")
            and procs.tcp_listening(self.collector_port)
            and procs.tcp_listening(self.otlp_port)
            and procs.udp_bound(self.agent_port)
        )


class Zipkin(_Server):
    """The Zipkin server jar with in-memory storage; `url` is its base URL.

    Spans are POSTed to `spans_url` (JSON v2, optionally gzip), traces read from
    `{url}/api/v2/trace/{id}`.
    """

    def __init__(self, workdir: Path) -> None:
        jar = cache.artifact("zipkin", "ZIPKIN_VERSION", "zipkin.jar")
        java = _java()
        self.port = procs.free_tcp_port()
        self.process = procs.ManagedProcess(
            "zipkin",
            [
                java,
                "-Xms64m",
                "-Xmx512m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-jar",
                str(jar),
                f"--armeria.ports[0].ip={procs.LOOPBACK}",
                f"--armeria.ports[0].port={self.port}",
                "--armeria.ports[0].protocols[0]=http",
            ],
            env={
                "STORAGE_TYPE": "mem",
                "SELF_TRACING_ENABLED": "false",
                "QUERY_PORT": str(self.port),
            },
            log_path=workdir / "zipkin.log",
            ready=lambda: procs.http_ok(f"{self.url}/health"),
            ready_timeout=120.0,
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        return _url(self.port)

    @property
    def spans_url(self) -> str:
        """Where reporters POST spans (Zipkin JSON v2)."""
        return f"{self.url}/api/v2/spans"

    def get_trace(self, trace_id: str) -> list[dict[str, Any]] | None:
        """The spans of one trace (Zipkin JSON v2), or None while Zipkin does not know it."""
        found = procs.get_json(f"{self.url}/api/v2/trace/{trace_id}")
        if found is None:
            return None
        if not isinstance(found, list):
            raise TypeError(f"zipkin /api/v2/trace/{trace_id}: expected a list, got {found!r}")
        return found


class OtelCollector(_Server):
    """An OpenTelemetry Collector (built with the collector builder) that writes every
    trace it receives to `output_file`, one OTLP JSON document a line.

    It receives OTLP over HTTP (`otlp_http_url`) and gRPC (`otlp_grpc_url`) in plain
    text, over TLS (`tls_http_url`, `tls_grpc_url`: a serving certificate for
    127.0.0.1, localhost and `TLS_SERVER_NAME`) and over mutual TLS (`mtls_http_url`,
    `mtls_grpc_url`: client certificates signed by `ca` required; `client` is one).
    The certificates are made for each run in `workdir/pki` (e2e/peers/pki.py).
    """

    TLS_SERVER_NAME = "otelcol.e2e.test"

    def __init__(self, workdir: Path) -> None:
        binary = cache.artifact("otelcol", "OTELCOL_BUILD", "bin/otelcol")
        self.port = procs.free_tcp_port()
        self.grpc_port = procs.free_tcp_port()
        self.tls_http_port = procs.free_tcp_port()
        self.tls_grpc_port = procs.free_tcp_port()
        self.mtls_http_port = procs.free_tcp_port()
        self.mtls_grpc_port = procs.free_tcp_port()
        self.output_file = workdir / "otelcol-traces.jsonl"
        tls_dir = workdir / "pki"
        tls_dir.mkdir(exist_ok=True)
        self.ca = pki.make_ca(tls_dir, "gatetrace-e2e-otelcol-ca")
        self.serving = pki.issue(
            self.ca,
            tls_dir,
            "otelcol",
            common_name=self.TLS_SERVER_NAME,
            dns_names=("localhost", self.TLS_SERVER_NAME),
            ip_addresses=(procs.LOOPBACK,),
            server=True,
        )
        self.client = pki.issue(self.ca, tls_dir, "client", common_name="gatetrace-gateway")
        ports = (
            self.port,
            self.grpc_port,
            self.tls_http_port,
            self.tls_grpc_port,
            self.mtls_http_port,
            self.mtls_grpc_port,
        )
        self.process = procs.ManagedProcess(
            "otelcol",
            [str(binary), "--config", str(PEERS_SRC / "otelcol.yaml")],
            env={
                "OTELCOL_OTLP_HTTP_PORT": str(self.port),
                "OTELCOL_OTLP_GRPC_PORT": str(self.grpc_port),
                "OTELCOL_TLS_HTTP_PORT": str(self.tls_http_port),
                "OTELCOL_TLS_GRPC_PORT": str(self.tls_grpc_port),
                "OTELCOL_MTLS_HTTP_PORT": str(self.mtls_http_port),
                "OTELCOL_MTLS_GRPC_PORT": str(self.mtls_grpc_port),
                "OTELCOL_TLS_CERT": str(self.serving.cert),
                "OTELCOL_TLS_KEY": str(self.serving.key),
                "OTELCOL_TLS_CLIENT_CA": str(self.ca.cert),
                "OTELCOL_OUTPUT_FILE": str(self.output_file),
            },
            log_path=workdir / "otelcol.log",
            ready=lambda: all(procs.tcp_listening(port) for port in ports),
            ready_timeout=60.0,
        )

    @property
    def otlp_http_url(self) -> str:
        """OTLP/HTTP base URL; traces go to `{otlp_http_url}/v1/traces`."""
        return _url(self.port)

    @property
    def otlp_grpc_url(self) -> str:
        """OTLP/gRPC endpoint in plain text (`http://127.0.0.1:<port>`)."""
        return _url(self.grpc_port)

    @property
    def tls_http_url(self) -> str:
        """OTLP/HTTP base URL over TLS."""
        return f"https://{procs.LOOPBACK}:{self.tls_http_port}"

    @property
    def tls_grpc_url(self) -> str:
        """OTLP/gRPC endpoint over TLS."""
        return f"https://{procs.LOOPBACK}:{self.tls_grpc_port}"

    @property
    def mtls_http_url(self) -> str:
        """OTLP/HTTP base URL over mutual TLS."""
        return f"https://{procs.LOOPBACK}:{self.mtls_http_port}"

    @property
    def mtls_grpc_url(self) -> str:
        """OTLP/gRPC endpoint over mutual TLS."""
        return f"https://{procs.LOOPBACK}:{self.mtls_grpc_port}"

    def exported(self) -> list[dict[str, Any]]:
        """Every OTLP JSON document (`{"resourceSpans": [...]}`) written so far."""
        try:
            lines = self.output_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def spans(self) -> list[dict[str, Any]]:
        """Every exported span (OTLP JSON span objects), across all documents."""
        return [
            span
            for doc in self.exported()
            for resource in doc.get("resourceSpans", [])
            for scope in resource.get("scopeSpans", [])
            for span in scope.get("spans", [])
        ]


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise cache.PeerMissingError("zipkin", Path("java"))
    return found
