"""Scenario 4: traces reach real backends, complete and correctly parented.

Traffic goes through two real gateway processes in a chain (edge on 127.0.0.41 ->
inner on 127.0.0.42 -> a plain upstream), so every trace has four spans: edge server
-> edge client -> inner server -> inner client. The same trace is read back from
Jaeger's query API (sent over UDP thrift compact, then — after a live reconfiguration
through the admin API — over HTTP thrift), from Zipkin's `/api/v2/trace/{id}`, from
the OpenTelemetry Collector's file output (OTLP/HTTP in), and from our own query API;
all must agree on ids, parents, names and services.
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


class Span(NamedTuple):
    span_id: str
    parent_id: str
    name: str
    service: str


class Chain(NamedTuple):
    edge: gateways.GatewayProcess
    inner: gateways.GatewayProcess


@pytest.fixture(scope="module")
def chain(
    jaeger: servers.Jaeger,
    zipkin: servers.Zipkin,
    otelcol: servers.OtelCollector,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Chain]:
    workdir: Path = tmp_path_factory.mktemp("backends")
    tracing = gateways.every_backend(jaeger, zipkin, otelcol)
    with gateways.Upstream() as upstream:
        inner = gateways.GatewayProcess(
            "inner",
            "127.0.0.42",
            workdir,
            token=TOKEN,
            service="inner-gateway",
            routes=[{"name": "orders", "prefix": "/api", "upstream": upstream.url}],
            tracing=tracing,
        ).start()
        try:
            edge = gateways.GatewayProcess(
                "edge",
                "127.0.0.41",
                workdir,
                token=TOKEN,
                service="edge-gateway",
                routes=[{"name": "api", "prefix": "/api", "upstream": inner.proxy_url}],
                tracing=tracing,
            ).start()
            try:
                yield Chain(edge, inner)
            finally:
                edge.stop()
        finally:
            inner.stop()


def _send(chain: Chain, path: str) -> str:
    client = gateways.Client(chain.edge)
    try:
        status, headers, body = client.request(path, {"x-request-id": secrets.token_hex(4)})
    finally:
        client.close()
    assert status == 200, body[:300]
    return headers["x-trace-id"]


def _check_shape(spans: set[Span], where: str) -> None:
    """Four spans, one root, each parent present, the chain edge -> inner."""
    assert len(spans) == 4, (where, spans)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1, (where, spans)
    chain = [roots[0]]
    while len(chain) < 4:
        children = [s for s in spans if s.parent_id == chain[-1].span_id]
        assert len(children) == 1, (where, chain[-1], spans)
        chain.append(children[0])
    assert all(s.parent_id in by_id for s in spans if s.parent_id), where
    assert [s.service for s in chain] == [
        "edge-gateway",
        "edge-gateway",
        "inner-gateway",
        "inner-gateway",
    ], (where, chain)


def _from_jaeger_json(trace: dict[str, Any]) -> set[Span]:
    [data] = trace["data"]
    spans = set()
    for s in data["spans"]:
        parents = [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"]
        service = data["processes"][s["processID"]]["serviceName"]
        spans.add(Span(s["spanID"], parents[0] if parents else "", s["operationName"], service))
    return spans


def _jaeger(jaeger: servers.Jaeger, trace_id: str) -> set[Span] | None:
    found = jaeger.get_trace(trace_id)
    if not found or not found.get("data"):
        return None
    spans = _from_jaeger_json(found)
    return spans if len(spans) >= 4 else None


def _zipkin(zipkin: servers.Zipkin, trace_id: str) -> set[Span] | None:
    found = zipkin.get_trace(trace_id)
    if not found or len(found) < 4:
        return None
    return {
        Span(s["id"], s.get("parentId", ""), s["name"], s["localEndpoint"]["serviceName"])
        for s in found
    }


def _otel(otelcol: servers.OtelCollector, trace_id: str) -> set[Span] | None:
    spans = set()
    for doc in otelcol.exported():
        for resource in doc.get("resourceSpans", []):
            attrs = {a["key"]: a["value"] for a in resource["resource"].get("attributes", [])}
            service = attrs.get("service.name", {}).get("stringValue", "")
            for scope in resource.get("scopeSpans", []):
                for s in scope.get("spans", []):
                    if s["traceId"] == trace_id:
                        spans.add(Span(s["spanId"], s.get("parentSpanId", ""), s["name"], service))
    return spans if len(spans) >= 4 else None


def _ours(chain: Chain, trace_id: str) -> set[Span] | None:
    spans: set[Span] = set()
    for gateway in chain:
        found = gateway.query(f"/api/traces/{trace_id}")
        if found is None or not found.get("data"):
            return None
        spans |= _from_jaeger_json(found)
    return spans if len(spans) >= 4 else None


def _agree(reference: set[Span], other: set[Span], where: str) -> None:
    """Same ids, parents and services; names equal up to case (Zipkin lowercases)."""
    ours = {(s.span_id, s.parent_id, s.name.lower(), s.service) for s in reference}
    theirs = {(s.span_id, s.parent_id, s.name.lower(), s.service) for s in other}
    assert ours == theirs, (where, ours ^ theirs)


def test_udp_compact_zipkin_and_otlp_get_the_same_complete_trace(
    chain: Chain, jaeger: servers.Jaeger, zipkin: servers.Zipkin, otelcol: servers.OtelCollector
) -> None:
    trace_id = _send(chain, "/api/orders/7")
    assert len(trace_id) == 32 and int(trace_id, 16)
    ours = kubeobj.eventually(lambda: _ours(chain, trace_id), 20.0, what="our query API")
    _check_shape(ours, "our query API")
    for name, probe in (
        ("jaeger (UDP compact)", lambda: _jaeger(jaeger, trace_id)),
        ("zipkin", lambda: _zipkin(zipkin, trace_id)),
        ("otel collector file", lambda: _otel(otelcol, trace_id)),
    ):
        theirs = kubeobj.eventually(probe, 30.0, what=name)
        _check_shape(theirs, name)
        _agree(ours, theirs, name)


def test_jaeger_over_http_after_a_live_reconfiguration(
    chain: Chain, jaeger: servers.Jaeger, zipkin: servers.Zipkin
) -> None:
    http = gateways.tracing({"type": "jaegerCollector", "endpoint": jaeger.collector_url})
    for gateway in chain:
        answer = gateway.put_tracing(100, http)
        assert answer["revision"] == 100
    trace_id = _send(chain, "/api/orders/8")
    ours = kubeobj.eventually(lambda: _ours(chain, trace_id), 20.0, what="our query API")
    theirs = kubeobj.eventually(lambda: _jaeger(jaeger, trace_id), 30.0, what="jaeger (HTTP)")
    _check_shape(theirs, "jaeger (HTTP)")
    _agree(ours, theirs, "jaeger (HTTP)")
    # the UDP/Zipkin reporters are gone: Zipkin does not get this trace
    assert zipkin.get_trace(trace_id) in (None, [])
