"""Subprocess plumbing for the e2e peers.

Free loopback ports, readiness probes, and `ManagedProcess`: a server process in its
own process group that can be stopped and started again on the same ports, whose
output goes to a log file, and that dies with the Python process that started it
(PR_SET_PDEATHSIG, plus an atexit sweep), so a test run leaves no stray servers.
"""

import atexit
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_LIVE: set["ManagedProcess"] = set()


class PeerStartError(RuntimeError):
    """A peer server exited or did not become ready in time; the message has its log tail."""


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tcp_listening(port: int) -> bool:
    """True when a TCP connect to 127.0.0.1:port succeeds."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def udp_bound(port: int) -> bool:
    """True when some process holds UDP 127.0.0.1:port (our own bind attempt fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
        return False


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when GET url answers 2xx within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0, context=context) as resp:  # noqa: S310
            return 200 <= int(resp.status) < 300
    except (OSError, urllib.error.URLError):
        return False


def get_json(url: str, context: ssl.SSLContext | None = None, timeout: float = 10.0) -> object:
    """GET an http(s) URL as JSON; None when it answers 404 (other errors raise)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url: expected http(s), got {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def post(url: str, data: bytes, content_type: str, timeout: float = 10.0) -> int:
    """POST bytes to an http(s) URL; the response status (HTTP errors raise)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url: expected http(s), got {url!r}")
    request = urllib.request.Request(  # noqa: S310
        url, data=data, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
        return int(resp.status)


def post_json(url: str, body: object, timeout: float = 10.0) -> int:
    """POST `body` as JSON to an http(s) URL; the response status (HTTP errors raise)."""
    return post(url, json.dumps(body).encode(), "application/json", timeout)


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ManagedProcess:
    """One peer server process: start (and wait until ready), stop, restart."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        ready_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.env = dict(os.environ) | dict(env or {})
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while running, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Starts the process and returns once `ready()` is true; raises PeerStartError."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}: {self.argv}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        _LIVE.add(self)
        deadline = time.monotonic() + self.ready_timeout
        while not self.ready():
            code = self._proc.poll()
            if code is not None:
                raise PeerStartError(f"{self.name} exited with {code}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise PeerStartError(
                    f"{self.name} not ready after {self.ready_timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, then SIGKILL after `timeout`; waits for the exit."""
        proc = self._proc
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
        self._proc = None

    def restart(self) -> None:
        """Stops and starts again with the same command line (so on the same ports)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the process log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        proc.stop(timeout=5.0)
