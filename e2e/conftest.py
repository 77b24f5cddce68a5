"""Session-scoped fixtures for the real peer servers (see e2e/peers/servers.py).

`kube` (a running ControlPlane: `.kubeconfig`, `.kubectl`, `.kubectl_run(...)`),
`jaeger`, `zipkin`, `otelcol` (running servers with their URLs and ports) and `helm`
(the helm binary's Path). Each server starts on first use, once per session, and
stops at the end. A peer that is not built skips its tests with the build command to
run, unless GATETRACE_E2E_REQUIRE is set (as in CI): then it is an error.
"""

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from peers import cluster as cluster_peers
from peers import servers

_E2E_DIR = Path(__file__).resolve().parent
# the unit tests' harnesses (``tests.embed.embedharness``...) serve e2e scenarios too
if str(_E2E_DIR.parent) not in sys.path:
    sys.path.append(str(_E2E_DIR.parent))
_E2E_TIMEOUT = 300  # seconds; a test may wait for a cold peer start (apiserver, JVM)


class _Startable(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


T = TypeVar("T")
S = TypeVar("S", bound=_Startable)


def _build_or_skip(build: Callable[[], T]) -> T:
    try:
        return build()
    except servers.PeerMissingError as exc:
        if os.environ.get("GATETRACE_E2E_REQUIRE"):
            pytest.fail(f"{exc} (GATETRACE_E2E_REQUIRE is set)")
        pytest.skip(str(exc))


def _serve(build: Callable[[], S]) -> Iterator[S]:
    server = _build_or_skip(build)
    try:
        server.start()  # on failure, stop() still ends what did start (etcd, say)
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Gives e2e tests without their own timeout marker a longer one."""
    for item in items:
        if _E2E_DIR in Path(str(item.path)).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_E2E_TIMEOUT))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.ControlPlane]:
    """etcd + kube-apiserver on 127.0.0.1, RBAC on; admin kubeconfig at `.kubeconfig`."""
    workdir = tmp_path_factory.mktemp("kube")
    yield from _serve(lambda: servers.ControlPlane(workdir))


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Jaeger]:
    """Jaeger v2: `.agent_port` (UDP compact), `.collector_url`, `.otlp_http_url`,
    `.query_url`."""
    workdir = tmp_path_factory.mktemp("jaeger")
    yield from _serve(lambda: servers.Jaeger(workdir))


@pytest.fixture(scope="session")
def zipkin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Zipkin]:
    """Zipkin server: `.url`, `.spans_url`."""
    workdir = tmp_path_factory.mktemp("zipkin")
    yield from _serve(lambda: servers.Zipkin(workdir))


@pytest.fixture(scope="session")
def otelcol(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.OtelCollector]:
    """OpenTelemetry Collector: `.otlp_http_url`, `.output_file` (OTLP JSON lines)."""
    workdir = tmp_path_factory.mktemp("otelcol")
    yield from _serve(lambda: servers.OtelCollector(workdir))


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of the helm v3 binary."""
    return _build_or_skip(servers.helm_binary)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster_peers.Cluster]:
    """A cluster without containers (its own etcd + kube-apiserver, controller manager,
    scheduler, KWOK nodes, the pod runner): Deployments become running Pods."""
    workdir = tmp_path_factory.mktemp("cluster")
    yield from _serve(lambda: cluster_peers.Cluster(workdir))
