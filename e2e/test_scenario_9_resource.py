"""Scenario 9: resource attributes and semantic conventions, read back from real backends.

Two replicas of one gateway (the same service, two pods as the chart's Downward API would
describe them in OTEL_RESOURCE_ATTRIBUTES; the service name from OTEL_SERVICE_NAME, since
their config sets none) send every trace to the real Jaeger (UDP thrift compact), Zipkin
and OpenTelemetry Collector (OTLP/HTTP). Read back from each backend:

* the replicas are told apart: each span carries its pod's k8s.* attributes and a distinct
  service.instance.id (Jaeger process tags, Zipkin tags, OTLP resource attributes), plus
  telemetry.sdk.* and service.version; OTLP carries the schema_url;
* the root span's sampler tags are Jaeger's sampler.type/param in Jaeger and our namespaced
  gatetrace.sampler.* in OTLP; url.query is recorded with the api_key value redacted;
* a failing upstream (503) makes an error span as each backend expects it: Jaeger
  error=true + otel.status_code=ERROR, Zipkin otel.status_code=ERROR + an error tag, OTLP
  status code 2.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from peers import servers
from scenarios import gateways, kubeobj

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(24)
SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
POD_UIDS = ("5f0c2a3e-0000-4000-8000-00000000a001", "5f0c2a3e-0000-4000-8000-00000000a002")


class Replicas(NamedTuple):
    a: gateways.GatewayProcess
    b: gateways.GatewayProcess


def _pod_env(pod: str, uid: str) -> dict[str, str]:
    attributes = (
        f"k8s.pod.name={pod},k8s.pod.uid={uid},k8s.namespace.name=edge,"
        "k8s.node.name=node-1,k8s.deployment.name=gt-api-gateway,k8s.container.name=gateway,"
        "deployment.environment.name=e2e%20run"
    )
    return {"OTEL_RESOURCE_ATTRIBUTES": attributes, "OTEL_SERVICE_NAME": "shop-edge"}


@pytest.fixture(scope="module")
def replicas(
    jaeger: servers.Jaeger,
    zipkin: servers.Zipkin,
    otelcol: servers.OtelCollector,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    workdir: Path = tmp_path_factory.mktemp("resource")
    tracing = gateways.every_backend(jaeger, zipkin, otelcol)
    with gateways.Upstream() as upstream:
        started: list[gateways.GatewayProcess] = []
        try:
            for name, ip, uid in (
                ("a", "127.0.0.91", POD_UIDS[0]),
                ("b", "127.0.0.92", POD_UIDS[1]),
            ):
                started.append(
                    gateways.GatewayProcess(
                        name,
                        ip,
                        workdir,
                        token=TOKEN,
                        service=None,
                        routes=[{"name": "shop", "prefix": "/api", "upstream": upstream.url}],
                        tracing=tracing,
                        env=_pod_env(f"gt-api-gateway-7d9f-{name}", uid),
                    ).start()
                )
            yield Replicas(*started)
        finally:
            for gateway in started:
                gateway.stop()


def _send(gateway: gateways.GatewayProcess, path: str, expect: int) -> str:
    client = gateways.Client(gateway)
    try:
        status, headers, body = client.request(path, {})
    finally:
        client.close()
    assert status == expect, body[:300]
    return headers["x-trace-id"]


def _jaeger_trace(jaeger: servers.Jaeger, trace_id: str) -> dict[str, Any] | None:
    found = jaeger.get_trace(trace_id)
    if not found or not found.get("data") or len(found["data"][0]["spans"]) < 2:
        return None
    trace: dict[str, Any] = found["data"][0]
    return trace


def _kv(tags: list[dict[str, Any]]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in tags}


def _root(spans: list[dict[str, Any]]) -> dict[str, Any]:
    (root,) = [s for s in spans if not s["references"]]
    return root


def test_jaeger_tells_the_replicas_apart_with_their_pod_attributes(
    replicas: Replicas, jaeger: servers.Jaeger
) -> None:
    instances = set()
    for gateway, uid in zip(replicas, POD_UIDS, strict=True):
        trace_id = _send(gateway, "/api/items?q=shoes&api_key=s3cr3t", 200)
        trace = kubeobj.eventually(lambda t=trace_id: _jaeger_trace(jaeger, t), 30.0, what="jaeger")
        (process,) = trace["processes"].values()
        assert process["serviceName"] == "shop-edge"
        tags = _kv(process["tags"])
        assert tags["k8s.pod.name"] == f"gt-api-gateway-7d9f-{gateway.name}"
        assert tags["k8s.pod.uid"] == uid
        assert tags["k8s.namespace.name"] == "edge"
        assert tags["k8s.deployment.name"] == "gt-api-gateway"
        assert tags["deployment.environment.name"] == "e2e run"
        assert (tags["telemetry.sdk.name"], tags["telemetry.sdk.language"]) == (
            "gatetrace",
            "python",
        )
        assert tags["service.version"] == tags["telemetry.sdk.version"] != ""
        instances.add(tags["service.instance.id"])
        root = _kv(_root(trace["spans"])["tags"])
        assert (root["sampler.type"], root["sampler.param"]) == ("const", True)
        assert "gatetrace.sampler.type" not in root
        assert root["url.query"] == "q=shoes&api_key=<redacted>"
        assert "s3cr3t" not in str(trace)
    assert len(instances) == 2


def test_an_error_span_as_jaeger_zipkin_and_the_collector_expect_it(
    replicas: Replicas,
    jaeger: servers.Jaeger,
    zipkin: servers.Zipkin,
    otelcol: servers.OtelCollector,
) -> None:
    trace_id = _send(replicas.a, "/api/orders/fail", 503)
    trace = kubeobj.eventually(lambda: _jaeger_trace(jaeger, trace_id), 30.0, what="jaeger")
    root = _kv(_root(trace["spans"])["tags"])
    assert root["error"] is True
    assert root["otel.status_code"] == "ERROR"
    assert root["http.response.status_code"] == 503

    def zipkin_root() -> dict[str, Any] | None:
        found = zipkin.get_trace(trace_id)
        roots = [s for s in found or [] if "parentId" not in s]
        return roots[0] if roots else None

    z = kubeobj.eventually(zipkin_root, 30.0, what="zipkin")
    assert z["localEndpoint"]["serviceName"] == "shop-edge"
    assert z["tags"]["otel.status_code"] == "ERROR"
    assert "error" in z["tags"]
    assert z["tags"]["k8s.pod.name"] == "gt-api-gateway-7d9f-a"
    assert z["tags"]["http.response.status_code"] == "503"

    def otlp_root() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        for doc in otelcol.exported():
            for resource_spans in doc.get("resourceSpans", []):
                for scope in resource_spans.get("scopeSpans", []):
                    for s in scope.get("spans", []):
                        if s["traceId"] == trace_id and not s.get("parentSpanId"):
                            return resource_spans, scope, s
        return None

    resource_spans, scope, s = kubeobj.eventually(otlp_root, 30.0, what="otel collector")
    assert resource_spans.get("schemaUrl") == SCHEMA_URL
    assert scope.get("schemaUrl") == SCHEMA_URL
    resource = {
        a["key"]: next(iter(a["value"].values())) for a in resource_spans["resource"]["attributes"]
    }
    assert resource["service.name"] == "shop-edge"
    assert resource["k8s.pod.uid"] == POD_UIDS[0]
    assert resource["k8s.node.name"] == "node-1"
    assert resource["gatetrace.component"] == "gateway"
    assert s["status"]["code"] == 2  # STATUS_CODE_ERROR
    attributes = {a["key"]: next(iter(a["value"].values())) for a in s["attributes"]}
    assert attributes["gatetrace.sampler.type"] == "const"
    assert "sampler.type" not in attributes and "error" not in attributes
