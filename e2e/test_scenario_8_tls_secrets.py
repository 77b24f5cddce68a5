"""Scenario 8 (operator side): a reporter's TLS material from a Secret, through the real
kopf operator and API server, to a gateway that sends over mutual TLS to the real
OpenTelemetry Collector.

The operator runs as the chart's ServiceAccount with the chart's RBAC (as in
scenario 3). A kubernetes.io/tls Secret (ca.crt, tls.crt, tls.key, made for the run)
is named by ``tls.secretName``: refused until it opts in as reporter credentials,
then its material reaches the gateway in the push, never the ConfigMap, the policy's
status, its Events or the gateway's admin GET.
"""

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from peers import servers
from scenarios import gateways, kubeobj, operators

pytestmark = pytest.mark.e2e

ROOT, NS, SYSTEM = "tls-root", "tls-gw", "tls-system"
RELEASE = "gt-tls"
TOKEN_SECRET = f"{SYSTEM}/gatetrace-admin-token"
LABELS = {"app.kubernetes.io/name": "api-gateway"}
CREDENTIALS_LABEL = "gatetrace.dev/reporter-credentials"


@dataclass
class Cluster:
    kube: servers.ControlPlane
    gateway: gateways.GatewayProcess
    otelcol: servers.OtelCollector


@pytest.fixture(scope="module")
def cluster(
    kube: servers.ControlPlane,
    helm: Path,
    otelcol: servers.OtelCollector,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("tls-secrets")
    kubeobj.ensure_crds(kube)
    kubeobj.ensure_namespaces(kube, ROOT, NS, SYSTEM)
    sa, _ = operators.install_rbac(kube, helm, RELEASE, SYSTEM)
    kubeconfig = operators.service_account_kubeconfig(kube, SYSTEM, sa, workdir / "sa.kubeconfig")
    token = secrets.token_urlsafe(24)
    kubeobj.admin_token_secret(kube, SYSTEM, "gatetrace-admin-token", token)
    with gateways.Upstream() as upstream:
        gateway = gateways.GatewayProcess(
            "tls-gw-0",
            "127.0.0.49",
            workdir,
            token=token,
            service="tls-gateway",
            routes=[{"name": "api", "prefix": "/api", "upstream": upstream.url}],
        ).start()
        kubeobj.apply(kube, kubeobj.gateway_pod("tls-gw-0", NS, "tls", gateway.admin_port, LABELS))
        kubeobj.set_pod_status(kube, "tls-gw-0", NS, gateway.ip, ready=True)
        operator = operators.OperatorProcess(
            "tls", kubeconfig, workdir, root_namespace=ROOT, token_secret=TOKEN_SECRET
        ).start()
        try:
            yield Cluster(kube, gateway, otelcol)
        finally:
            kube.kubectl_run("delete", "tp", "--all", "-n", NS, "--timeout=30s", check=False)
            operator.stop()
            kube.kubectl_run(
                "patch", "tp", "--all", "-n", NS, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
            gateway.stop()
            kubeobj.delete(kube, "pod", "tls-gw-0", NS)


def _key_line(otelcol: servers.OtelCollector) -> str:
    """A line from the middle of the client's private key: must never show up."""
    lines = otelcol.client.key.read_text().splitlines()
    return lines[len(lines) // 2]


def _spec(otelcol: servers.OtelCollector) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": LABELS},
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [
            {"type": "memory"},
            {
                "type": "otlpGrpc",
                "endpoint": otelcol.mtls_grpc_url,
                "tls": {"secretName": "otel-client", "serverName": otelcol.TLS_SERVER_NAME},
            },
        ],
        "batching": {"flushIntervalMs": 100},
    }


def _accepted(cluster: Cluster, status: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubeobj.get(cluster.kube, "tracingpolicy", "otel-mtls", NS)
        cond = kubeobj.condition(obj or {}, "Accepted")
        observed = ((obj or {}).get("status") or {}).get("observedGeneration")
        if obj and cond and cond["status"] == status and observed == obj["metadata"]["generation"]:
            return dict(obj)
        return None

    return kubeobj.eventually(probe, 30.0, what=f"otel-mtls Accepted={status}")


def _send(gateway: gateways.GatewayProcess) -> str:
    client = gateways.Client(gateway)
    try:
        status, headers, body = client.request("/api/orders/1", {})
    finally:
        client.close()
    assert status == 200, body[:300]
    return headers["x-trace-id"]


def test_pem_from_an_opted_in_secret_reaches_the_collector_and_nowhere_else(
    cluster: Cluster,
) -> None:
    otelcol = cluster.otelcol
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "otel-client", "namespace": NS},
        "stringData": {
            "ca.crt": otelcol.ca.cert.read_text(),
            "tls.crt": otelcol.client.cert.read_text(),
            "tls.key": otelcol.client.key.read_text(),
        },
    }
    kubeobj.apply(cluster.kube, secret)
    kubeobj.apply(cluster.kube, kubeobj.policy("otel-mtls", NS, _spec(otelcol)))

    refused = _accepted(cluster, "False")
    message = kubeobj.condition(refused, "Accepted")["message"]  # type: ignore[index]
    assert "spec.reporters[1].tls.secretName" in message, message
    assert f"Secret {NS}/otel-client has not opted in" in message

    cluster.kube.kubectl_run(
        "label", "secret", "otel-client", "-n", NS, f"{CREDENTIALS_LABEL}=true"
    )
    applied = _accepted(cluster, "True")  # the drift timer re-reads the Secret

    def running_mtls() -> dict[str, Any] | None:
        running = cluster.gateway.running()
        types = [r["type"] for r in running["config"]["reporters"]]
        return running if types == ["memory", "otlpGrpc"] else None

    running = kubeobj.eventually(running_mtls, 30.0, what="the gateway runs the otlpGrpc reporter")
    trace_id = _send(cluster.gateway)
    kubeobj.eventually(
        lambda: [s for s in otelcol.spans() if s["traceId"] == trace_id] or None,
        30.0,
        what="spans over mutual TLS with the Secret's certificate",
    )

    key_line = _key_line(otelcol)
    tls = running["config"]["reporters"][1]["tls"]
    assert tls["key"] == "<redacted>" and tls["secretName"] == "otel-client"
    configmap = kubeobj.get(cluster.kube, "configmap", "gatetrace-tls", NS)
    assert configmap is not None
    stored = json.loads(configmap["data"]["tracing.json"])
    assert "key" not in stored["config"]["reporters"][1]["tls"]
    events = kubeobj.events_for(cluster.kube, "otel-mtls", NS)
    for text, where in (
        (json.dumps(running), "admin GET"),
        (json.dumps(configmap), "ConfigMap"),
        (json.dumps(applied), "policy status"),
        (json.dumps(events), "Events"),
    ):
        assert key_line not in text, where
