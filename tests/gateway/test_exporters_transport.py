"""The gateway's exporter factory carries each sending reporter's headers, gzip and TLS
into its transport: a real https collector that requires a client certificate sees the
headers and the certificate and decodes the gzipped body; a config the gateway cannot
build (missing file, missing grpc extra) is refused naming the reporter."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pydantic
import pytest
from gt_spans import make_span
from tests.runtime.reporting import grpctools, reportertools, tlstools

from gatetrace.gateway import exporters, store
from gatetrace.policy import build, model, reporters
from gatetrace.runtime import metrics
from gatetrace.runtime.reporting import export

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tlstools.Pki:
    return tlstools.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def mtls(certs: tlstools.Pki) -> AsyncIterator[reportertools.Collector]:
    context = tlstools.server_context(certs.server, client_ca=certs.ca)
    server = await reportertools.Collector(ssl_context=context).start()
    try:
        yield server
    finally:
        await server.stop()


def _tls(certs: tlstools.Pki) -> dict[str, str]:
    return {
        "caFile": str(certs.ca.cert),
        "certFile": str(certs.client.cert),
        "keyFile": str(certs.client.key),
    }


def _reporter(document: dict[str, Any]) -> reporters.Reporter:
    parsed: reporters.Reporter = pydantic.TypeAdapter(reporters.Reporter).validate_python(document)
    return parsed


@pytest.mark.parametrize(
    ("kind", "path"),
    [("zipkin", "/api/v2/spans"), ("otlpHttp", "/v1/traces"), ("jaegerCollector", "/api/traces")],
)
async def test_headers_gzip_and_mutual_tls_reach_the_collector(
    mtls: reportertools.Collector, certs: tlstools.Pki, kind: str, path: str
) -> None:
    reporter = _reporter(
        {
            "type": kind,
            "endpoint": f"{mtls.base}{path}",
            "headers": {"X-Scope-OrgID": "tenant-7"},
            "gzip": True,
            "tls": _tls(certs),
        }
    )
    exporter = exporters.factory(store.SpanStore())(reporter)
    try:
        outcome = await exporter.export([make_span() for _ in range(20)], 5)
    finally:
        await exporter.close()
    assert outcome.result is export.ExportResult.SUCCESS
    (received,) = mtls.received
    assert received.path == path
    assert received.headers["x-scope-orgid"] == "tenant-7"  # names are lower-cased
    assert received.headers["Content-Encoding"] == "gzip"
    assert received.client_cn == "gateway-client"
    assert 0 < received.wire_size < len(received.body)  # decoded by the server: it was gzip


async def test_otlp_grpc_gets_metadata_and_mutual_tls(certs: tlstools.Pki) -> None:
    credentials = grpc.ssl_server_credentials(
        [(certs.server.key.read_bytes(), certs.server.cert.read_bytes())],
        root_certificates=certs.ca.cert.read_bytes(),
        require_client_auth=True,
    )
    async with grpctools.serving(grpctools.GrpcCollector(), credentials) as collector:
        reporter = _reporter(
            {
                "type": "otlpGrpc",
                "endpoint": f"https://127.0.0.1:{collector.port}",
                "headers": {"X-Scope-OrgID": "tenant-7"},
                "tls": _tls(certs),
            }
        )
        exporter = exporters.factory(store.SpanStore())(reporter)
        try:
            outcome = await exporter.export([make_span()], 5)
        finally:
            await exporter.close()
    assert outcome.result is export.ExportResult.SUCCESS
    assert collector.metadata[0]["x-scope-orgid"] == "tenant-7"
    assert len(collector.spans()) == 1


def _build(reporter: dict[str, Any]) -> None:
    config = model.TracingConfig.model_validate({"reporters": [{"type": "memory"}, reporter]})
    build.build_runtime(
        config,
        service="gw",
        registry=metrics.Registry(),
        exporters=exporters.factory(store.SpanStore()),
    )


def test_a_missing_ca_file_refuses_the_config_naming_the_reporter(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    reporter = {
        "type": "otlpHttp",
        "endpoint": "https://otel:4318/v1/traces",
        "tls": {"caFile": str(missing)},
    }
    with pytest.raises(build.BuildFailed) as raised:
        _build(reporter)
    assert f"reporters[1]: tls.caFile: cannot read {missing}" in str(raised.value)


def test_otlp_grpc_without_the_extra_refuses_the_config_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if grpcio were not installed
    with pytest.raises(build.BuildFailed) as raised:
        _build({"type": "otlpGrpc", "endpoint": "http://otel:4317"})
    assert "reporters[1]: otlpGrpc needs the optional grpc support" in str(raised.value)
    assert "pip install 'gatetrace[grpc]'" in str(raised.value)
