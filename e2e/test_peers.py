"""Smoke tests proving each real peer server works as the e2e scenarios need it."""

# the Jaeger thrift types come untyped from jaeger-client's generated code
# mypy: disable-error-code="no-untyped-call"

import functools
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger import ttypes as jaeger_types
from peers import procs, servers
from scenarios import kubeobj
from thrift.protocol import TBinaryProtocol, TCompactProtocol  # type: ignore[import-untyped]
from thrift.Thrift import TMessageType  # type: ignore[import-untyped]
from thrift.transport import TTransport  # type: ignore[import-untyped]

pytestmark = pytest.mark.e2e


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.gatetrace.dev}
spec:
  group: e2e.gatetrace.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, description: How many widgets.}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: gw-0, namespace: default, labels: {app.kubernetes.io/name: api-gateway}}
spec:
  containers: [{name: gateway, image: gatetrace/gateway:e2e}]
"""


def otlp_json(trace_id: str, span_id: str, name: str) -> dict[str, Any]:
    """One server span as an OTLP/JSON ExportTraceServiceRequest (hex ids, per spec)."""
    start = time.time_ns() - 5_000_000
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "e2e-smoke"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "gatetrace-e2e"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 3_000_000),
                                "attributes": [
                                    {"key": "http.method", "value": {"stringValue": "GET"}}
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_kube_crd_custom_object_and_pod_status(kube: servers.ControlPlane) -> None:
    kube.kubectl_run("apply", "-f", "-", input=CRD)
    kube.kubectl_run(
        "wait", "--for=condition=Established", "crd/widgets.e2e.gatetrace.dev", "--timeout=60s"
    )
    widget = (
        "apiVersion: e2e.gatetrace.dev/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: %d}\n"
    )
    kube.kubectl_run("apply", "-n", "default", "-f", "-", input=widget % 3)
    got = json.loads(kube.kubectl_run("get", "wd", "w1", "-n", "default", "-o", "json").stdout)
    assert got["spec"] == {"size": 3}
    rejected = kube.kubectl_run("apply", "-f", "-", input=widget % 0, check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr

    def explained() -> str | None:
        out = kube.kubectl_run("explain", "widget.spec.size", check=False)
        return out.stdout if out.returncode == 0 else None

    assert "How many widgets." in kubeobj.eventually(explained, timeout=30.0)

    kube.kubectl_run("apply", "-f", "-", input=POD)
    status = {
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.2",
            "podIPs": [{"ip": "127.0.0.2"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    kube.kubectl_run(
        "patch", "pod", "gw-0", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    pod = kube.get_json("/api/v1/namespaces/default/pods/gw-0")
    assert isinstance(pod, dict)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == "127.0.0.2"
    assert {"type": "Ready", "status": "True"}.items() <= pod["status"]["conditions"][0].items()
    running = kube.kubectl_run(
        "get", "pods", "-n", "default", "--field-selector=status.phase=Running", "-o", "name"
    )
    assert running.stdout.split() == ["pod/gw-0"]


def test_kube_rbac_and_service_account_tokens(kube: servers.ControlPlane) -> None:
    denied = kube.kubectl_run("auth", "can-i", "list", "pods", "--as=nobody", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    kube.kubectl_run("create", "serviceaccount", "e2e-probe", "-n", "default")
    token = kube.kubectl_run("create", "token", "e2e-probe", "-n", "default").stdout.strip()
    as_sa = [
        "--kubeconfig=/dev/null",
        f"--server={kube.server}",
        f"--certificate-authority={kube.pki.ca.cert}",
        f"--token={token}",
    ]
    whoami = json.loads(kube.kubectl_run(*as_sa, "auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:default:e2e-probe"
    forbidden = kube.kubectl_run(*as_sa, "get", "secrets", "-n", "default", check=False)
    assert forbidden.returncode != 0
    assert "forbidden" in forbidden.stderr.lower()


def test_jaeger_stores_an_otlp_json_span(jaeger: servers.Jaeger) -> None:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    body = otlp_json(trace_id, span_id, "jaeger-smoke")
    assert procs.post_json(f"{jaeger.otlp_http_url}/v1/traces", body) == 200
    trace = kubeobj.eventually(lambda: jaeger.get_trace(trace_id))
    [data] = trace["data"]
    [span] = data["spans"]
    assert (span["traceID"], span["spanID"], span["operationName"]) == (
        trace_id,
        span_id,
        "jaeger-smoke",
    )
    assert data["processes"][span["processID"]]["serviceName"] == "e2e-smoke"


def _signed64(hex_id: str) -> int:
    value = int(hex_id, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _thrift_batch(trace_id: str, span_id: str, name: str) -> Any:
    """A Jaeger thrift Batch with one span (types generated by jaeger-client)."""
    now_us = time.time_ns() // 1000
    span = jaeger_types.Span(
        traceIdLow=_signed64(trace_id[16:]),
        traceIdHigh=_signed64(trace_id[:16]),
        spanId=_signed64(span_id),
        parentSpanId=0,
        operationName=name,
        flags=1,
        startTime=now_us - 3000,
        duration=3000,
        tags=[jaeger_types.Tag(key="span.kind", vType=jaeger_types.TagType.STRING, vStr="server")],
    )
    return jaeger_types.Batch(process=jaeger_types.Process(serviceName="e2e-smoke"), spans=[span])


def test_jaeger_receives_thrift_over_udp_and_http(jaeger: servers.Jaeger) -> None:
    udp_trace, http_trace = secrets.token_hex(16), secrets.token_hex(16)
    span_id = secrets.token_hex(8)

    buffer = TTransport.TMemoryBuffer()
    compact = TCompactProtocol.TCompactProtocol(buffer)
    compact.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 1)
    Agent.emitBatch_args(batch=_thrift_batch(udp_trace, span_id, "udp-smoke")).write(compact)
    compact.writeMessageEnd()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(buffer.getvalue(), (procs.LOOPBACK, jaeger.agent_port))

    buffer = TTransport.TMemoryBuffer()
    _thrift_batch(http_trace, span_id, "http-smoke").write(TBinaryProtocol.TBinaryProtocol(buffer))
    status = procs.post(jaeger.collector_url, buffer.getvalue(), "application/x-thrift")
    assert status == 202

    for trace_id, name in ((udp_trace, "udp-smoke"), (http_trace, "http-smoke")):
        trace = kubeobj.eventually(functools.partial(jaeger.get_trace, trace_id))
        [span] = trace["data"][0]["spans"]
        assert (span["traceID"], span["spanID"], span["operationName"]) == (
            trace_id,
            span_id,
            name,
        )


def test_zipkin_stores_a_v2_json_span(zipkin: servers.Zipkin) -> None:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    span = {
        "traceId": trace_id,
        "id": span_id,
        "name": "zipkin-smoke",
        "kind": "SERVER",
        "timestamp": time.time_ns() // 1000,
        "duration": 3000,
        "localEndpoint": {"serviceName": "e2e-smoke"},
        "tags": {"http.method": "GET"},
    }
    assert procs.post_json(zipkin.spans_url, [span]) == 202
    [got] = kubeobj.eventually(lambda: zipkin.get_trace(trace_id))
    assert (got["traceId"], got["id"], got["name"]) == (trace_id, span_id, "zipkin-smoke")
    assert got["localEndpoint"]["serviceName"] == "e2e-smoke"


def test_otelcol_writes_received_spans_to_its_file(otelcol: servers.OtelCollector) -> None:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    body = otlp_json(trace_id, span_id, "otelcol-smoke")
    assert procs.post_json(f"{otelcol.otlp_http_url}/v1/traces", body) == 200

    def find() -> dict[str, Any] | None:
        return next((s for s in otelcol.spans() if s["traceId"] == trace_id), None)

    span = kubeobj.eventually(find)
    assert (span["spanId"], span["name"]) == (span_id, "otelcol-smoke")


def test_helm_runs(helm: Path) -> None:
    out = subprocess.run(
        [str(helm), "version", "--short"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.startswith(servers.versions()["HELM_VERSION"])


def test_a_stopped_peer_leaves_no_process_and_restarts_on_its_ports(
    jaeger: servers.Jaeger, tmp_path: Path
) -> None:
    with servers.Jaeger(tmp_path) as second:
        pid = second.process.pid
        assert pid is not None
        ports = (second.query_port, second.otlp_port, second.agent_port)
        second.restart()
        assert second.running
        assert second.process.pid != pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        pid = second.process.pid
        assert pid is not None
        assert (second.query_port, second.otlp_port, second.agent_port) == ports
        assert second.get_trace(secrets.token_hex(16)) is None
    assert second.process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
