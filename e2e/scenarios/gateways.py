"""Real `gatetrace gateway` processes bound to distinct 127.0.0.x addresses, and the
plain HTTP upstream they proxy to.

`Upstream` answers every request with the request headers it received (JSON), so a test
sees what the gateway propagated (the W3C `traceparent` sampled flag is the gateway's
sampling decision on real traffic). `GatewayProcess` writes a gateway config file
(proxy and admin API on its own address, admin token file, the watched tracing file a
ConfigMap mount would provide) and runs the real CLI as a subprocess.
"""

import concurrent.futures
import http.client
import http.server
import json
import socket
import socketserver
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from peers import procs

GATETRACE = Path(sys.executable).with_name("gatetrace")


def free_port(host: str) -> int:
    """A TCP port free on `host` (and on the wildcard address) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        assert isinstance(self.server, _Server)
        with self.server.lock:
            self.server.received.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()})
            )
        status = 503 if self.path.rstrip("/").endswith("/fail") else 200
        body = json.dumps(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    received: list[tuple[str, dict[str, str]]]
    lock: threading.Lock


class Upstream:
    """A threaded echo server on 127.0.0.1 (in the test process); `/.../fail` answers 503.
    It remembers each request's path and headers (it also stands in for an OTLP receiver)."""

    def __init__(self) -> None:
        self._server = _Server((procs.LOOPBACK, 0), _EchoHandler)
        self._server.received, self._server.lock = [], threading.Lock()
        self.url = f"http://{procs.LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def received(self, path: str) -> list[dict[str, str]]:
        """Headers of the requests received so far on ``path`` (e.g. an OTLP reporter's)."""
        with self._server.lock:
            return [headers for p, headers in self._server.received if p == path]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class GatewayProcess:
    """`gatetrace gateway --config FILE` bound to `ip` (proxy and admin on free ports)."""

    def __init__(
        self,
        name: str,
        ip: str,
        workdir: Path,
        *,
        token: str,
        routes: Sequence[Mapping[str, Any]],
        service: str | None = "api-gateway",
        tracing: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name, self.ip, self.token = name, ip, token
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proxy_port = free_port(ip)
        self.admin_port = free_port(ip)
        self.tracing_file = self.dir / "tracing.json"
        token_file = self.dir / "admin-token"
        token_file.write_text(token)
        config: dict[str, Any] = {
            "listen": f"{ip}:{self.proxy_port}",
            "admin": {"listen": f"{ip}:{self.admin_port}", "tokenFile": str(token_file)},
            "routes": [dict(r) for r in routes],
            "tracingFile": str(self.tracing_file),
        }
        if service is not None:  # else OTEL_SERVICE_NAME or the default
            config["service"] = service
        if tracing is not None:
            config["tracing"] = dict(tracing)
        self.config_path = self.dir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process = procs.ManagedProcess(
            f"gateway-{name}",
            [
                str(GATETRACE),
                "gateway",
                "--config",
                str(self.config_path),
                "--log-level",
                "WARNING",
            ],
            log_path=self.dir / "gateway.log",
            ready=lambda: procs.http_ok(f"{self.admin_url}/healthz"),
            ready_timeout=60.0,
            env=env,
        )

    @property
    def proxy_url(self) -> str:
        return f"http://{self.ip}:{self.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.ip}:{self.admin_port}"

    def start(self) -> Self:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def _admin(self, path: str, timeout: float = 5.0) -> Any:
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            self.admin_url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return json.load(resp)

    def running(self) -> dict[str, Any]:
        """`GET /admin/v1/tracing`: {revision, version, appliedAt, config}."""
        found: dict[str, Any] = self._admin("/admin/v1/tracing")
        return found

    def put_tracing(self, revision: int, config: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /admin/v1/tracing` (what the operator does); the answer's JSON."""
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            self.admin_url + "/admin/v1/tracing",
            data=json.dumps({"revision": revision, "config": dict(config)}).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10.0) as resp:  # noqa: S310
            answer: dict[str, Any] = json.load(resp)
            return answer

    def revision(self) -> int | None:
        """The running revision; None while no tracing config is loaded (404)."""
        try:
            return int(self.running()["revision"])
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def workers(self) -> list[dict[str, Any]]:
        """`GET /admin/v1/workers`: each worker process's pid, revision and requests served
        ([] for a single-process gateway, which has no such route)."""
        try:
            found: list[dict[str, Any]] = self._admin("/admin/v1/workers")["workers"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise
        return found

    def query(self, path: str) -> Any:
        """The query API (Jaeger-query JSON), e.g. `/api/traces/{id}`; None on 404."""
        try:
            return self._admin(path)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def metrics(self) -> str:
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=5.0) as resp:  # noqa: S310
            text: str = resp.read().decode()
            return text


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples `name{...}` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        have = dict(
            (k, v.strip('"'))
            for k, _, v in (part.partition("=") for part in rest.rstrip("}").split(",") if part)
        )
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


class Client:
    """Keep-alive HTTP/1.1 requests to one gateway's proxy."""

    def __init__(self, gateway: GatewayProcess, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = gateway.ip, gateway.proxy_port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, path: str, headers: Mapping[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, headers=dict(headers or {}))
                resp = self._conn.getresponse()
                body = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def sampled_share(gateway: GatewayProcess, path: str, n: int, connections: int = 4) -> float:
    """Share of `n` fresh requests (no incoming context) the gateway propagated as
    sampled: the flag of the `traceparent` the upstream received."""

    def run(count: int) -> int:
        client = Client(gateway)
        sampled = 0
        try:
            for _ in range(count):
                status, _, body = client.request(path)
                assert status == 200, (path, status, body[:200])
                traceparent = json.loads(body)["headers"].get("traceparent", "")
                assert traceparent.count("-") == 3, f"no traceparent upstream: {traceparent!r}"
                sampled += int(traceparent.rsplit("-", 1)[1], 16) & 1
        finally:
            client.close()
        return sampled

    shares = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        return sum(pool.map(run, shares)) / n


def tracing(*reporters: dict[str, Any]) -> dict[str, Any]:
    """A tracing config sampling everything (W3C propagation, 100 ms flushes) into the
    memory store and ``reporters``."""
    return {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "propagation": {"extract": ["tracecontext"], "inject": ["tracecontext"]},
        "reporters": [{"type": "memory"}, *reporters],
        "batching": {"flushIntervalMs": 100},
    }


def every_backend(jaeger: Any, zipkin: Any, otelcol: Any) -> dict[str, Any]:
    """:func:`tracing` sending to the real Jaeger (UDP), Zipkin and Collector (OTLP/HTTP)."""
    return tracing(
        {"type": "jaegerAgent", "host": "127.0.0.1", "port": jaeger.agent_port},
        {"type": "zipkin", "endpoint": zipkin.spans_url},
        {"type": "otlpHttp", "endpoint": f"{otelcol.otlp_http_url}/v1/traces"},
    )
