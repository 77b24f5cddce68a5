"""Scenario 11: services' spans reach the gateway's OTLP/HTTP receiver through the real
OpenTelemetry Collector, and join the gateway's own traces.

A real gateway process proxies a request to a plain upstream; the upstream's
``traceparent`` is where a service behind it would continue the trace. The "service" is
the OpenTelemetry Python SDK: it sends its spans (children of the gateway's client span)
over OTLP/HTTP to a real Collector (``peers/otelcol-to-gateway.yaml``), whose
``otlp_http`` exporter forwards them to the gateway's ``/v1/traces`` with the admin token:
protobuf + gzip in one pipeline, JSON in another. Read back through the gateway's query
API, the spans equal what the SDK recorded (ids, parents, names, kinds, attributes,
events, status, resource) and sit in one trace with the gateway's spans, with the
dependency edge gateway -> service. A third pipeline with a wrong token gets 401s and
stores nothing.
"""

import os
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from peers import cache, procs
from scenarios import gateways

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(24)
_KINDS = {trace.SpanKind.SERVER: "server", trace.SpanKind.CLIENT: "client"}


class Setup(NamedTuple):
    gateway: gateways.GatewayProcess
    upstream: gateways.Upstream
    ports: dict[str, int]
    """The Collector's OTLP/HTTP receiver port per pipeline: proto, json, badtoken."""


def _collector(workdir: Path, gateway: gateways.GatewayProcess) -> tuple[Any, dict[str, int]]:
    try:
        binary = cache.artifact("otelcol", "OTELCOL_BUILD", "bin/otelcol")
    except cache.PeerMissingError as exc:
        if os.environ.get("GATETRACE_E2E_REQUIRE"):
            pytest.fail(f"{exc} (GATETRACE_E2E_REQUIRE is set)")
        pytest.skip(str(exc))
    ports = {name: procs.free_tcp_port() for name in ("proto", "json", "badtoken")}
    process = procs.ManagedProcess(
        "otelcol-to-gateway",
        [str(binary), "--config", str(cache.PEERS_SRC / "otelcol-to-gateway.yaml")],
        env={
            "OTELCOL_PROTO_PORT": str(ports["proto"]),
            "OTELCOL_JSON_PORT": str(ports["json"]),
            "OTELCOL_BADTOKEN_PORT": str(ports["badtoken"]),
            "GATEWAY_TRACES_URL": f"{gateway.admin_url}/v1/traces",
            "GATEWAY_TOKEN": TOKEN,
        },
        log_path=workdir / "otelcol.log",
        ready=lambda: all(procs.tcp_listening(port) for port in ports.values()),
        ready_timeout=60.0,
    )
    return process, ports


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir: Path = tmp_path_factory.mktemp("otlp-receiver")
    tracing = {"sampling": {"sampler": {"type": "const", "decision": True}}}
    with gateways.Upstream() as upstream:
        gateway = gateways.GatewayProcess(
            "edge",
            "127.0.0.1",
            workdir,
            token=TOKEN,
            service="edge-gateway",
            routes=[{"name": "shop", "prefix": "/shop", "upstream": upstream.url}],
            tracing=tracing,
        ).start()
        try:
            collector, ports = _collector(workdir, gateway)
            collector.start()
            try:
                yield Setup(gateway, upstream, ports)
            finally:
                collector.stop()
        finally:
            gateway.stop()


def _through_gateway(setup: Setup, path: str) -> tuple[str, str]:
    """Send one request through the gateway; (trace id, the gateway's client span id)."""
    with urllib.request.urlopen(setup.gateway.proxy_url + path, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    traceparent = setup.upstream.received(path)[-1]["traceparent"]
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def _service_spans(port: int, trace_id: str, parent_id: str) -> list[ReadableSpan]:
    """What a service behind the gateway records and sends to the Collector."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "cart", "k8s.pod.name": "cart-5d8f"})
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("scenario-11")
    upstream = trace.NonRecordingSpan(
        trace.SpanContext(
            int(trace_id, 16),
            int(parent_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    with tracer.start_as_current_span(
        "GET /shop/cart",
        context=trace.set_span_in_context(upstream),
        kind=trace.SpanKind.SERVER,
        attributes={"http.status_code": 200, "cart.items": 3, "cache.hit": True, "ratio": 0.5},
    ) as server:
        server.add_event("cart loaded", {"items": 3})
        with tracer.start_as_current_span("SELECT carts", kind=trace.SpanKind.CLIENT) as query:
            query.set_status(trace.Status(trace.StatusCode.ERROR, "deadlock, retried"))
    provider.shutdown()
    spans = list(kept.get_finished_spans())
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    return spans


def _eventually(get: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = get()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("not there in time")
        time.sleep(0.2)


def _trace_with(setup: Setup, trace_id: str, count: int) -> dict[str, Any] | None:
    found = setup.gateway.query(f"/api/traces/{trace_id}")
    if not found or not found.get("data"):
        return None
    data: dict[str, Any] = found["data"][0]
    return data if len(data["spans"]) >= count else None


def _expected_tags(span: ReadableSpan) -> dict[str, Any]:
    found = dict(span.attributes or {})
    if span.kind in _KINDS:
        found["span.kind"] = _KINDS[span.kind]
    if span.status.status_code is trace.StatusCode.ERROR:
        found |= {
            "error": True,
            "otel.status_code": "ERROR",
            "otel.status_description": span.status.description,
        }
    return found


def _check(sent: list[ReadableSpan], got: dict[str, Any], gateway_parent: str) -> None:
    rows = {row["spanID"]: row for row in got["spans"]}
    for span in sent:
        row = rows[f"{span.context.span_id:016x}"]
        assert row["operationName"] == span.name
        assert row["startTime"] == span.start_time // 1000
        assert row["duration"] == (span.end_time - span.start_time) // 1000  # type: ignore[operator]
        assert {t["key"]: t["value"] for t in row["tags"]} == _expected_tags(span)
        parent = f"{span.parent.span_id:016x}" if span.parent else ""
        assert [r["spanID"] for r in row["references"]] == [parent]
        assert [{f["key"]: f["value"] for f in log["fields"]} for log in row["logs"]] == [
            {"event": e.name, **dict(e.attributes or {})} for e in span.events
        ]
        process = got["processes"][row["processID"]]
        assert process["serviceName"] == "cart"
        assert {t["key"]: t["value"] for t in process["tags"]} == {
            k: v for k, v in span.resource.attributes.items() if k != "service.name"
        }
    root = next(s for s in sent if s.name == "GET /shop/cart")
    assert f"{root.parent.span_id:016x}" == gateway_parent  # type: ignore[union-attr]
    services = {p["serviceName"] for p in got["processes"].values()}
    assert services == {"edge-gateway", "cart"}


@pytest.mark.parametrize("pipeline", ["proto", "json"])
def test_collector_forwards_service_spans_into_the_gateways_trace(
    setup: Setup, pipeline: str
) -> None:
    trace_id, client_span = _through_gateway(setup, f"/shop/cart-{pipeline}")
    sent = _service_spans(setup.ports[pipeline], trace_id, client_span)
    got = _eventually(lambda: _trace_with(setup, trace_id, 4))  # 2 gateway + 2 service spans
    _check(sent, got, client_span)
    deps = setup.gateway.query(f"/api/dependencies?endTs={int(time.time() * 1000)}&lookback=60000")
    # the other pipeline's trace (the module's gateway is shared) may count too
    assert any(d["parent"] == "edge-gateway" and d["child"] == "cart" for d in deps["data"])


def test_a_collector_with_the_wrong_token_gets_401_and_nothing_is_stored(setup: Setup) -> None:
    trace_id, client_span = _through_gateway(setup, "/shop/badtoken")
    _service_spans(setup.ports["badtoken"], trace_id, client_span)

    def refused() -> bool:
        return (
            gateways.metric_sum(
                setup.gateway.metrics(), "gatetrace_admin_requests_total", code="401"
            )
            > 0
        )

    _eventually(refused)
    found = _trace_with(setup, trace_id, 1)
    assert found is not None
    assert {p["serviceName"] for p in found["processes"].values()} == {"edge-gateway"}
