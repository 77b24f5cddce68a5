"""Readiness and liveness probes as the kubelet runs them: `httpGet` (2xx/3xx is a
success), `tcpSocket` (a connect) and `exec` (exit 0, run inside the container's
mount namespace), with initialDelaySeconds, periodSeconds, timeoutSeconds,
successThreshold and failureThreshold.
"""

import http.client
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"probe port {port!r}: no container port has that name")


def run_probe(
    probe: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, pid: int | None
) -> bool:
    """One probe attempt; True on success."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            return _http_get(probe["httpGet"], container, pod_ip, timeout)
        if "tcpSocket" in probe:
            port = resolve_port(probe["tcpSocket"]["port"], container)
            host = probe["tcpSocket"].get("host") or pod_ip
            with socket.create_connection((host, port), timeout=timeout):
                return True
        if "exec" in probe:
            return _exec(probe["exec"]["command"], pid, timeout)
    except (OSError, http.client.HTTPException, subprocess.TimeoutExpired):
        return False
    raise ValueError(f"probe {sorted(probe)}: no httpGet, tcpSocket or exec")


def _http_get(
    get: Mapping[str, Any], container: Mapping[str, Any], ip: str, timeout: float
) -> bool:
    port = resolve_port(get["port"], container)
    host = get.get("host") or ip
    cls = (
        http.client.HTTPSConnection if get.get("scheme") == "HTTPS" else http.client.HTTPConnection
    )
    conn = cls(host, port, timeout=timeout)
    try:
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
        conn.request("GET", get.get("path", "/"), headers=headers)
        return 200 <= conn.getresponse().status < 400
    finally:
        conn.close()


def _exec(command: list[str], pid: int | None, timeout: float) -> bool:
    if pid is None:
        return False
    argv = ["nsenter", f"--target={pid}", "--mount", "--", *command]
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    return done.returncode == 0


@dataclass
class ProbeState:
    """The thresholds' bookkeeping for one probe of one running container."""

    spec: Mapping[str, Any]
    started: float
    ok: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.next_at = self.started + float(self.spec.get("initialDelaySeconds", 0))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, success: bool, now: float) -> None:
        """Counts an attempt; `ok` flips after successThreshold successes or
        failureThreshold failures in a row."""
        self.next_at = now + float(self.spec.get("periodSeconds", 10))
        if success:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.ok = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.ok = False

    @property
    def failed(self) -> bool:
        """True once failureThreshold attempts in a row failed (liveness: restart)."""
        return self.failures >= int(self.spec.get("failureThreshold", 3))


def now() -> float:
    return time.monotonic()
