"""Scenario 8: exporter transport against the real OpenTelemetry Collector, Jaeger and
Zipkin: OTLP over gRPC, TLS and mutual TLS (certificates made for the run by
peers/pki.py), gzip and headers on every HTTP reporter.

One gateway process; each case gives it one remote reporter (from its config file at
start, then through the admin API as the operator would push it, PEM inline as the
operator puts it from a Secret), sends a request and reads the trace back from the
backend. The failure cases check that a collector the gateway cannot trust, or that
refuses its certificate, gets nothing, costs the requests nothing, and is counted.
"""

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from peers import servers
from scenarios import gateways, kubeobj

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(24)
FAILURES = "gatetrace_reporter_export_failures_total"


class Revisions:
    def __init__(self) -> None:
        self.value = 1

    def next(self) -> int:
        self.value += 1
        return self.value


def _tracing(*reporters: dict[str, Any]) -> dict[str, Any]:
    return {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "reporters": [{"type": "memory"}, *reporters],
        "batching": {"flushIntervalMs": 100, "exportTimeoutMs": 2000},
    }


def _mtls_files(otelcol: servers.OtelCollector) -> dict[str, str]:
    return {
        "caFile": str(otelcol.ca.cert),
        "certFile": str(otelcol.client.cert),
        "keyFile": str(otelcol.client.key),
    }


def _mtls_pem(otelcol: servers.OtelCollector) -> dict[str, str]:
    """As the operator pushes it after reading a kubernetes.io/tls Secret."""
    return {
        "ca": otelcol.ca.cert.read_text(),
        "cert": otelcol.client.cert.read_text(),
        "key": otelcol.client.key.read_text(),
    }


@pytest.fixture(scope="module")
def gateway(
    otelcol: servers.OtelCollector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gateways.GatewayProcess]:
    """Starts with an otlpGrpc reporter over mutual TLS, its files named in the config."""
    workdir = tmp_path_factory.mktemp("transport")
    reporter = {"type": "otlpGrpc", "endpoint": otelcol.mtls_grpc_url, "tls": _mtls_files(otelcol)}
    with gateways.Upstream() as upstream:
        process = gateways.GatewayProcess(
            "transport",
            "127.0.0.48",
            workdir,
            token=TOKEN,
            service="transport-gateway",
            routes=[{"name": "api", "prefix": "/api", "upstream": upstream.url}],
            tracing=_tracing(reporter),
        ).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def revisions() -> Revisions:
    return Revisions()


def _send(gateway: gateways.GatewayProcess, path: str = "/api/orders/1") -> tuple[str, float]:
    """One request through the gateway: its trace id and how long it took."""
    client = gateways.Client(gateway)
    try:
        started = time.monotonic()
        status, headers, body = client.request(path, {})
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert status == 200, body[:300]
    return headers["x-trace-id"], elapsed


def _collected(otelcol: servers.OtelCollector, trace_id: str) -> list[dict[str, Any]] | None:
    spans = [s for s in otelcol.spans() if s["traceId"] == trace_id]
    return spans or None


def _apply(
    gateway: gateways.GatewayProcess, revisions: Revisions, reporter: dict[str, Any]
) -> None:
    gateway.put_tracing(revisions.next(), _tracing(reporter))


def test_otlp_grpc_over_mutual_tls_from_files_in_the_gateway_config(
    gateway: gateways.GatewayProcess, otelcol: servers.OtelCollector
) -> None:
    trace_id, _ = _send(gateway)
    spans = kubeobj.eventually(lambda: _collected(otelcol, trace_id), 30.0, what="mTLS gRPC")
    assert {s["kind"] for s in spans} == {2, 3}  # SERVER and CLIENT: the gateway's two spans


@pytest.mark.parametrize(
    ("case", "reporter"),
    [
        ("grpc plain", lambda c: {"type": "otlpGrpc", "endpoint": c.otlp_grpc_url}),
        (
            "grpc tls, server name",
            lambda c: {
                "type": "otlpGrpc",
                "endpoint": c.tls_grpc_url,
                "gzip": False,
                "tls": {"ca": c.ca.cert.read_text(), "serverName": c.TLS_SERVER_NAME},
            },
        ),
        (
            "grpc mtls, pem",
            lambda c: {"type": "otlpGrpc", "endpoint": c.mtls_grpc_url, "tls": _mtls_pem(c)},
        ),
        (
            "http tls",
            lambda c: {
                "type": "otlpHttp",
                "endpoint": f"{c.tls_http_url}/v1/traces",
                "tls": {"caFile": str(c.ca.cert)},
            },
        ),
        (
            "http mtls, pem",
            lambda c: {
                "type": "otlpHttp",
                "endpoint": f"{c.mtls_http_url}/v1/traces",
                "headers": {"x-scope-orgid": "e2e"},
                "tls": _mtls_pem(c),
            },
        ),
        (
            "http insecureSkipVerify",
            lambda c: {
                "type": "otlpHttp",
                "endpoint": f"{c.tls_http_url}/v1/traces",
                "tls": {"insecureSkipVerify": True},
            },
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_transport_delivers_to_the_real_collector(
    gateway: gateways.GatewayProcess,
    otelcol: servers.OtelCollector,
    revisions: Revisions,
    case: str,
    reporter: Any,
) -> None:
    _apply(gateway, revisions, reporter(otelcol))
    trace_id, _ = _send(gateway)
    kubeobj.eventually(lambda: _collected(otelcol, trace_id), 30.0, what=case)


@pytest.mark.parametrize(
    ("case", "reporter", "reasons"),
    [
        (
            "untrusted collector (system CAs)",
            lambda c: {"type": "otlpHttp", "endpoint": f"{c.tls_http_url}/v1/traces"},
            ("tls_certificate",),
        ),
        (
            "untrusted collector over gRPC (another CA)",
            lambda c: {
                "type": "otlpGrpc",
                "endpoint": c.tls_grpc_url,
                "tls": {"ca": c.client.cert.read_text()},  # not the CA that signed it
            },
            ("tls_certificate", "tls_handshake"),
        ),
        (
            "no client certificate for mutual TLS",
            lambda c: {
                "type": "otlpGrpc",
                "endpoint": c.mtls_grpc_url,
                "tls": {"ca": c.ca.cert.read_text()},
            },
            # TLS 1.3: the client's handshake is over before the server refuses; gRPC
            # sees the connection closed
            ("grpc_unavailable", "tls_handshake"),
        ),
        (
            "no client certificate for mutual TLS over HTTP",
            lambda c: {
                "type": "otlpHttp",
                "endpoint": f"{c.mtls_http_url}/v1/traces",
                "tls": {"ca": c.ca.cert.read_text()},
            },
            ("tls_handshake",),  # the Go server sends its alert: read as a TLS error
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_collector_that_fails_tls_gets_nothing_costs_nothing_and_is_counted(
    gateway: gateways.GatewayProcess,
    otelcol: servers.OtelCollector,
    revisions: Revisions,
    case: str,
    reporter: Any,
    reasons: tuple[str, ...],
) -> None:
    built = reporter(otelcol)
    _apply(gateway, revisions, built)
    before = {r: gateways.metric_sum(gateway.metrics(), FAILURES, reason=r) for r in reasons}
    sent = [_send(gateway) for _ in range(5)]
    assert max(elapsed for _, elapsed in sent) < 1.0, sent  # the request path never waits

    def counted() -> float | None:
        text = gateway.metrics()
        grew = sum(gateways.metric_sum(text, FAILURES, reason=r) - before[r] for r in reasons)
        return grew or None

    kubeobj.eventually(counted, 20.0, what=f"{case}: failures counted")
    time.sleep(0.5)
    assert all(_collected(otelcol, trace_id) is None for trace_id, _ in sent), case


def test_zipkin_and_jaeger_collector_send_gzip_with_headers(
    gateway: gateways.GatewayProcess,
    zipkin: servers.Zipkin,
    jaeger: servers.Jaeger,
    revisions: Revisions,
) -> None:
    """Both servers decode what the gateway gzips (Zipkin's, and Jaeger's thrift-over-HTTP
    receiver); the headers ride along."""
    common = {"gzip": True, "headers": {"x-scope-orgid": "e2e"}}
    for name, reporter, read in (
        ("zipkin", {"type": "zipkin", "endpoint": zipkin.spans_url}, zipkin.get_trace),
        (
            "jaeger",
            {"type": "jaegerCollector", "endpoint": jaeger.collector_url},
            jaeger.get_trace,
        ),
    ):
        _apply(gateway, revisions, reporter | common)
        trace_id, _ = _send(gateway)

        def found(read: Any = read, trace_id: str = trace_id) -> Any:
            got = read(trace_id)
            return got if got and (got.get("data") if isinstance(got, dict) else got) else None

        kubeobj.eventually(found, 30.0, what=f"{name} (gzip)")
        metrics = gateway.metrics()
        assert gateways.metric_sum(metrics, FAILURES, reporter=reporter["type"]) == 0, name
