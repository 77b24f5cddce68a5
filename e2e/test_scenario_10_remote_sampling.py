"""Scenario 10: the operator serves Jaeger's remote sampling API from TracingPolicies.

- Against the real Jaeger: the same strategies, once as a Jaeger strategies file served by
  Jaeger v2's ``remote_sampling`` extension and once as ``spec.services`` served by the
  operator (standalone mode, a real process): both endpoints answer the same JSON for every
  service, the unnamed ones included; editing a policy file changes the answer live.
- In a cluster: the kopf operator (real API server) serves a TracingPolicy's services,
  follows a live change, and marks the newer of two policies naming one service Conflicted.
"""

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import cache, procs, servers
from scenarios import gateways, kubeobj, operators

pytestmark = pytest.mark.e2e

ROOT = "gt-rs-system"

# (Jaeger strategies file entry, the same as a spec.services entry)
STRATEGIES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"service": "checkout", "type": "probabilistic", "param": 0.25},
        {"name": "checkout", "sampler": {"type": "probabilistic", "rate": 0.25}},
    ),
    (
        {
            "service": "orders",
            "type": "probabilistic",
            "param": 0.5,
            "operation_strategies": [
                {"operation": "GET /health", "type": "probabilistic", "param": 0},
                {"operation": "POST /orders", "type": "probabilistic", "param": 1},
            ],
        },
        {
            "name": "orders",
            "sampler": {"type": "probabilistic", "rate": 0.5},
            "operations": [
                {"operation": "GET /health", "probability": 0},
                {"operation": "POST /orders", "probability": 1},
            ],
        },
    ),
    (
        {"service": "payments", "type": "ratelimiting", "param": 7},
        {"name": "payments", "sampler": {"type": "rateLimiting", "tracesPerSecond": 7}},
    ),
]
DEFAULT_RATE = 0.05
ASKED = ["checkout", "orders", "payments", "someone-else"]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)
    except (urllib.error.URLError, OSError):  # not listening yet
        return 0, None, {}


def _until(probe: Any, what: str, timeout: float = 20.0) -> Any:
    """The first truthy value of ``probe()`` (polled; fails after ``timeout``)."""
    return kubeobj.eventually(lambda: probe() or None, timeout=timeout, what=what)


def _require(name: str, key: str, relative: str) -> Path:
    try:
        return cache.artifact(name, key, relative)
    except cache.PeerMissingError as exc:
        if os.environ.get("GATETRACE_E2E_REQUIRE"):
            pytest.fail(f"{exc} (GATETRACE_E2E_REQUIRE is set)")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def jaeger_sampling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Jaeger v2 serving the strategies file on its remote sampling HTTP port."""
    workdir = tmp_path_factory.mktemp("jaeger-sampling")
    binary = _require("jaeger", "JAEGER_VERSION", "bin/jaeger")
    strategies = {
        "service_strategies": [jaeger for jaeger, _ in STRATEGIES],
        "default_strategy": {"type": "probabilistic", "param": DEFAULT_RATE},
    }
    (workdir / "strategies.json").write_text(json.dumps(strategies))
    http, grpc, otlp = (procs.free_tcp_port() for _ in range(3))
    config = {
        "service": {
            "extensions": ["jaeger_storage", "remote_sampling"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
        },
        "extensions": {
            "jaeger_storage": {"backends": {"mem": {"memory": {"max_traces": 100}}}},
            "remote_sampling": {
                "file": {"path": str(workdir / "strategies.json")},
                "http": {"endpoint": f"127.0.0.1:{http}"},
                "grpc": {"endpoint": f"127.0.0.1:{grpc}"},
            },
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp}"}}}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "mem"}},
    }
    (workdir / "jaeger.yaml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{http}"
    process = procs.ManagedProcess(
        "jaeger-sampling",
        [str(binary), "--config", str(workdir / "jaeger.yaml")],
        log_path=workdir / "jaeger.log",
        ready=lambda: _get(f"{url}/sampling?service=x")[0] == 200,
    )
    process.start()
    try:
        yield url
    finally:
        process.stop()


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return kubeobj.policy(name, namespace, spec)


@pytest.fixture(scope="module")
def standalone_sampling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`gatetrace operator --standalone` serving the same strategies from policy files."""
    workdir = tmp_path_factory.mktemp("standalone-sampling")
    policies = workdir / "policies"
    policies.mkdir()
    root = _policy(
        "default", ROOT, {"sampling": {"sampler": {"type": "probabilistic", "rate": DEFAULT_RATE}}}
    )
    shop = _policy("services", "shop", {"services": [ours for _, ours in STRATEGIES]})
    (policies / "root.yaml").write_text(yaml.safe_dump(root))
    (policies / "shop.yaml").write_text(yaml.safe_dump(shop))
    port = procs.free_tcp_port()
    url = f"http://127.0.0.1:{port}"
    process = procs.ManagedProcess(
        "operator-standalone-sampling",
        [
            str(gateways.GATETRACE),
            "operator",
            f"--standalone={policies}",
            f"--root-namespace={ROOT}",
            f"--sampling-listen=127.0.0.1:{port}",
            "--metrics-listen=",
        ],
        env={"GATETRACE_ADMIN_TOKEN": secrets.token_urlsafe(16)},
        log_path=workdir / "operator.log",
        ready=lambda: (
            _get(f"{url}/sampling?service=orders")[0] == 200
            and _get(f"{url}/sampling?service=orders")[1].get("operationSampling") is not None
        ),
    )
    process.start()
    try:
        yield url, policies
    finally:
        process.stop()


def test_our_answers_equal_jaegers_for_the_same_strategies(
    jaeger_sampling: str, standalone_sampling: tuple[str, Path]
) -> None:
    ours, _ = standalone_sampling
    for path in ("/sampling", "/api/sampling"):
        for service in ASKED:
            status_j, jaeger, _ = _get(f"{jaeger_sampling}{path}?service={service}")
            status_o, mine, headers = _get(f"{ours}{path}?service={service}")
            assert (status_o, mine) == (status_j, jaeger), (path, service)
            assert headers["ETag"] and headers["Cache-Control"] == "no-cache"
    # both refuse a request without a service with a 400
    assert _get(f"{jaeger_sampling}/sampling")[0] == _get(f"{ours}/sampling")[0] == 400


def test_a_policy_change_reaches_pollers_and_etags_save_the_body(
    standalone_sampling: tuple[str, Path],
) -> None:
    url, policies = standalone_sampling
    _, before, headers = _get(f"{url}/sampling?service=checkout")
    etag = headers["ETag"]
    assert _get(f"{url}/sampling?service=checkout", {"If-None-Match": etag})[0] == 304
    changed = [ours for _, ours in STRATEGIES]
    changed[0] = {"name": "checkout", "sampler": {"type": "probabilistic", "rate": 1.0}}
    shop = _policy("services", "shop", {"services": changed})
    (policies / "shop.yaml").write_text(yaml.safe_dump(shop))
    answer = _until(
        lambda: (
            (a := _get(f"{url}/sampling?service=checkout", {"If-None-Match": etag}))[0] == 200 and a
        ),
        "the edited policy file served",
        timeout=15,
    )
    assert answer[1] == {"strategyType": 0, "probabilisticSampling": {"samplingRate": 1.0}}
    assert before != answer[1] and answer[2]["ETag"] != etag
    (policies / "shop.yaml").write_text(
        yaml.safe_dump(_policy("services", "shop", {"services": [o for _, o in STRATEGIES]}))
    )


def test_the_kopf_operator_serves_live_policies_and_reports_conflicts(
    kube: servers.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("kopf-sampling")
    kubeobj.ensure_crds(kube)
    kubeobj.ensure_namespaces(kube, ROOT, "rs-a", "rs-b")
    port = procs.free_tcp_port()
    url = f"http://127.0.0.1:{port}"
    op = operators.OperatorProcess(
        "sampling",
        kube.kubeconfig,
        workdir,
        root_namespace=ROOT,
        token_secret=f"{ROOT}/gatetrace-admin-token",
        extra=[f"--sampling-listen=127.0.0.1:{port}"],
    ).start()
    try:
        entry = {"name": "rs-checkout", "sampler": {"type": "probabilistic", "rate": 0.3}}
        kubeobj.apply(kube, _policy("svc", "rs-a", {"services": [entry]}))
        _until(
            lambda: (
                _get(f"{url}/sampling?service=rs-checkout")[1]
                == {"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.3}}
            ),
            "the policy's service strategy served",
            timeout=60,
        )
        entry["sampler"] = {"type": "rateLimiting", "tracesPerSecond": 2}
        kubeobj.apply(kube, _policy("svc", "rs-a", {"services": [entry]}))
        _until(
            lambda: (
                _get(f"{url}/api/sampling?service=rs-checkout")[1]
                == {"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 2}}
            ),
            "the live change served",
            timeout=60,
        )
        time.sleep(1.1)  # creationTimestamp has one-second resolution: rs-b/svc is newer
        other = {"name": "rs-checkout", "sampler": {"type": "probabilistic", "rate": 1.0}}
        kubeobj.apply(kube, _policy("svc", "rs-b", {"services": [other]}))
        conflicted = _until(
            lambda: (
                (c := kubeobj.condition(kubeobj.get(kube, "tp", "svc", "rs-b") or {}, "Conflicted"))
                and c.get("status") == "True"
                and c
            ),
            "the newer policy Conflicted",
            timeout=60,
        )
        assert "rs-a/svc wins for service rs-checkout" in conflicted["message"]
        assert _get(f"{url}/sampling?service=rs-checkout")[1]["strategyType"] == 1
        assert _get(f"{url}/sampling?service=" + "x" * 10_000)[0] == 400
    finally:
        for ns in ("rs-a", "rs-b"):
            kube.kubectl_run("delete", "tp", "--all", "-n", ns, "--timeout=30s", check=False)
        op.stop()


def _gosampler(url: str, service: str, rounds: int, *operations: str) -> "subprocess.Popen[str]":
    binary = _require("gosampler", "GOSAMPLER_VERSION", "bin/gosampler")
    return subprocess.Popen(
        [str(binary), f"{url}/sampling", service, "400", str(rounds), *operations],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop(process: "subprocess.Popen[str]") -> None:
    process.kill()
    process.communicate()  # reaps it and closes its pipes


def _rounds(process: "subprocess.Popen[str]") -> Iterator[dict[str, int]]:
    assert process.stdout is not None
    for line in process.stdout:
        yield json.loads(line)["sampled"]


def test_the_go_jaegerremote_sampler_follows_the_policies(
    standalone_sampling: tuple[str, Path],
) -> None:
    """OpenTelemetry Go contrib's jaegerremote sampler (no one here wrote it) polls the
    operator: probabilities 0 and 1 per operation, the service's default for the others,
    a rate limit, and a policy edit picked up within its polling interval."""
    url, policies = standalone_sampling
    orders = _gosampler(url, "orders", 2, "GET /health", "POST /orders", "GET /other")
    payments = _gosampler(url, "payments", 2, "POST /pay")
    try:
        last = list(_rounds(orders))[-1]
        assert last.get("GET /health", 0) == 0
        assert last["POST /orders"] == 1000
        assert 400 <= last["GET /other"] <= 600  # 0.5 of 1000, +-6 sigma
        paid = list(_rounds(payments))[-1]
        assert 1 <= paid.get("POST /pay", 0) <= 20  # 7 traces/s: a burst of about 7
    finally:
        for process in (orders, payments):
            _stop(process)
    checkout = _gosampler(url, "checkout", 40, "GET /cart")
    try:
        rounds = _rounds(checkout)
        first = next(rounds)
        assert 150 <= first["GET /cart"] <= 350  # 0.25 of 1000
        changed = [ours for _, ours in STRATEGIES]
        changed[0] = {"name": "checkout", "sampler": {"type": "probabilistic", "rate": 1.0}}
        (policies / "shop.yaml").write_text(
            yaml.safe_dump(_policy("services", "shop", {"services": changed}))
        )
        edited = time.monotonic()
        for sampled in rounds:
            if sampled.get("GET /cart") == 1000:
                break
            assert time.monotonic() - edited < 12, "the Go sampler never saw the change"
    finally:
        _stop(checkout)
        (policies / "shop.yaml").write_text(
            yaml.safe_dump(_policy("services", "shop", {"services": [o for _, o in STRATEGIES]}))
        )


def test_the_node_jaeger_remote_sampler_follows_the_policies(
    standalone_sampling: tuple[str, Path],
) -> None:
    """@opentelemetry/sampler-jaeger-remote (npm) polls the operator: per-operation
    probabilities 0 and 1, the service's default for other operations."""
    url, _ = standalone_sampling
    folder = _require("nodesampler", "NODESAMPLER_VERSION", "sampler.js").parent
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Debian: apt-get install nodejs)")
    process = subprocess.Popen(
        [node, "sampler.js", url, "orders", "400", "4", "GET /health", "POST /orders", "GET /x"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        last = list(_rounds(process))[-1]
    finally:
        _stop(process)
    assert last.get("GET /health", 0) == 0
    assert last["POST /orders"] == 1000
    assert 400 <= last["GET /x"] <= 600


def test_a_standby_replica_serves_the_policies_too(
    kube: servers.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With peering, kopf pauses every replica but the leader; the standby still answers
    from its own watch, and follows a change."""
    workdir = tmp_path_factory.mktemp("standby-sampling")
    kubeobj.ensure_crds(kube, peering=True)
    kubeobj.ensure_namespaces(kube, ROOT, "rs-c")
    peering = "gt-rs-peering"
    kubeobj.apply(
        kube,
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    replicas = []
    for name, priority in (("high", 200), ("low", 100)):
        port = procs.free_tcp_port()
        op = operators.OperatorProcess(
            f"sampling-{name}",
            kube.kubeconfig,
            workdir,
            root_namespace=ROOT,
            token_secret=f"{ROOT}/gatetrace-admin-token",
            peering=peering,
            priority=priority,
            extra=[f"--sampling-listen=127.0.0.1:{port}"],
        )
        replicas.append((op.start(), f"http://127.0.0.1:{port}"))
    try:
        for rate in (0.4, 0.9):
            entry = {"name": "rs-standby", "sampler": {"type": "probabilistic", "rate": rate}}
            kubeobj.apply(kube, _policy("svc", "rs-c", {"services": [entry]}))
            want = {"strategyType": 0, "probabilisticSampling": {"samplingRate": rate}}
            for op, url in replicas:
                _until(
                    lambda url=url, want=want: (
                        _get(f"{url}/sampling?service=rs-standby")[1] == want
                    ),
                    f"replica {op.name} serves rate {rate}",
                    timeout=60,
                )
        low = replicas[1][0]
        reconciles = gateways.metric_sum(low.metrics(), "gatetrace_operator_reconciles_total")
        assert reconciles == 0, "the standby reconciled: it was not a standby"
    finally:
        kube.kubectl_run("delete", "tp", "--all", "-n", "rs-c", "--timeout=30s", check=False)
        for op, _ in replicas:
            op.stop()
