"""TLS of the HTTP reporters against a real https server on 127.0.0.1, with
certificates the tests make: a private CA, mutual TLS, a server name override,
``insecure_skip_verify`` only when set, and failures that are counted, never raised."""

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from reportertools import Collector, finished_span, gateway_spans
from tlstools import SERVER_NAME, Pki, make_pki, server_context

from gatetrace.runtime.reporting import engine, export, http, jaeger_collector, otlp, zipkin
from gatetrace.runtime.reporting import tls as _tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _serving(context: ssl.SSLContext) -> AsyncIterator[Collector]:
    server = await Collector(ssl_context=context).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def https(certs: Pki) -> AsyncIterator[Collector]:
    """An https collector whose certificate is signed by the test CA."""
    async for server in _serving(server_context(certs.server)):
        yield server


@pytest.fixture
async def mtls(certs: Pki) -> AsyncIterator[Collector]:
    """An https collector that requires a client certificate signed by the test CA."""
    async for server in _serving(server_context(certs.server, client_ca=certs.ca)):
        yield server


def _pem(path: Path) -> str:
    return path.read_text()


async def _post(collector: Collector, settings: _tls.TlsSettings | None) -> export.ExportOutcome:
    transport = http.HttpTransport(
        f"{collector.base}/v1/traces", content_type="application/x-protobuf", tls=settings
    )
    try:
        return (await transport.post(b"batch", timeout=5)).outcome
    finally:
        await transport.close()


async def test_a_private_ca_from_a_file_verifies_the_server(https: Collector, certs: Pki) -> None:
    outcome = await _post(https, _tls.TlsSettings(ca_file=str(certs.ca.cert)))
    assert outcome.result is export.ExportResult.SUCCESS
    assert [r.body for r in https.received] == [b"batch"]


async def test_a_private_ca_as_pem_text_verifies_the_server(https: Collector, certs: Pki) -> None:
    outcome = await _post(https, _tls.TlsSettings(ca_pem=_pem(certs.ca.cert)))
    assert outcome.result is export.ExportResult.SUCCESS


@pytest.mark.parametrize("trusting", ["system", "stranger"])
async def test_an_untrusted_server_is_a_counted_failure_not_a_crash(
    https: Collector, certs: Pki, trusting: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = (
        None if trusting == "system" else _tls.TlsSettings(ca_file=str(certs.stranger_ca.cert))
    )
    with caplog.at_level(logging.WARNING, "gatetrace.runtime.reporting.http"):
        outcome = await _post(https, settings)
    assert outcome == export.ExportOutcome(export.ExportResult.FAILURE, "tls_certificate")
    assert https.received == []
    assert "certificate verify failed" in caplog.text


async def test_insecure_skip_verify_accepts_any_server_only_when_set(https: Collector) -> None:
    verified = await _post(https, _tls.TlsSettings())
    skipped = await _post(https, _tls.TlsSettings(insecure_skip_verify=True))
    assert verified.reason == "tls_certificate"
    assert skipped.result is export.ExportResult.SUCCESS


async def test_server_name_verifies_a_certificate_issued_for_another_name(certs: Pki) -> None:
    async for named in _serving(server_context(certs.named)):
        plain = await _post(named, _tls.TlsSettings(ca_file=str(certs.ca.cert)))
        renamed = await _post(
            named, _tls.TlsSettings(ca_file=str(certs.ca.cert), server_name=SERVER_NAME)
        )
        assert plain.reason == "tls_certificate"  # issued for collector.test, not 127.0.0.1
        assert renamed.result is export.ExportResult.SUCCESS
        assert len(named.received) == 1


async def test_mutual_tls_presents_the_client_certificate(mtls: Collector, certs: Pki) -> None:
    from_files = _tls.TlsSettings(
        ca_file=str(certs.ca.cert), cert_file=str(certs.client.cert), key_file=str(certs.client.key)
    )
    from_pem = _tls.TlsSettings(
        ca_pem=_pem(certs.ca.cert), cert_pem=_pem(certs.client.cert), key_pem=_pem(certs.client.key)
    )
    assert (await _post(mtls, from_files)).result is export.ExportResult.SUCCESS
    assert (await _post(mtls, from_pem)).result is export.ExportResult.SUCCESS
    assert [r.client_cn for r in mtls.received] == ["gateway-client", "gateway-client"]


@pytest.mark.parametrize("client", ["none", "stranger"])
async def test_a_client_certificate_the_server_refuses_is_an_outcome_not_a_crash(
    mtls: Collector, certs: Pki, client: str
) -> None:
    """In TLS 1.3 the client's side of the handshake ends before the server checks the
    client certificate: the refusal comes back as a TLS alert or, from a server that
    closes at once (as asyncio's does), as a connection reset."""
    settings = _tls.TlsSettings(ca_file=str(certs.ca.cert))
    if client == "stranger":
        settings = _tls.TlsSettings(
            ca_file=str(certs.ca.cert),
            cert_file=str(certs.stranger_client.cert),
            key_file=str(certs.stranger_client.key),
        )
    outcome = await _post(mtls, settings)
    assert outcome.result is not export.ExportResult.SUCCESS
    assert outcome.reason in {"tls_handshake", "connection_reset"}
    assert mtls.received == []


async def test_the_engine_counts_tls_failures_by_reason_and_drops_without_retrying(
    https: Collector, certs: Pki
) -> None:
    exporter = zipkin.ZipkinExporter(
        f"{https.base}/api/v2/spans", tls=_tls.TlsSettings(ca_file=str(certs.stranger_ca.cert))
    )
    processor = engine.BatchingProcessor(
        exporter, engine.BatchSettings(max_batch_size=10, flush_interval_ms=10)
    )
    processor.start()
    try:
        for span in gateway_spans(10):
            processor.on_end(span)
        assert await processor.force_flush(5)
    finally:
        await processor.shutdown(1)
    m = processor.metrics
    assert m.failure_count("tls_certificate") == 1  # not retried: a retry cannot mend it
    assert m.dropped_count("export_failed") == 10
    assert https.attempts == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda endpoint, settings: zipkin.ZipkinExporter(endpoint, tls=settings),
        lambda endpoint, settings: otlp.OtlpHttpExporter(endpoint, tls=settings),
        lambda endpoint, settings: jaeger_collector.JaegerCollectorExporter(endpoint, tls=settings),
    ],
    ids=["zipkin", "otlpHttp", "jaegerCollector"],
)
async def test_every_http_reporter_speaks_mutual_tls(
    mtls: Collector, certs: Pki, build: object
) -> None:
    settings = _tls.TlsSettings(
        ca_file=str(certs.ca.cert), cert_file=str(certs.client.cert), key_file=str(certs.client.key)
    )
    exporter = build(f"{mtls.base}/api/spans", settings)  # type: ignore[operator]
    try:
        outcome = await exporter.export([finished_span()], 5)
    finally:
        await exporter.close()
    assert outcome.result is export.ExportResult.SUCCESS
    assert [r.client_cn for r in mtls.received] == ["gateway-client"]


class TestConfigurationErrors:
    """Raised when the reporter is built (so the config is refused), naming the field."""

    def test_a_missing_file_names_the_field_and_path(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.crt"
        with pytest.raises(ValueError, match=r"tls\.caFile: cannot read .*nope\.crt"):
            _tls.client_context(_tls.TlsSettings(ca_file=str(missing)))

    def test_a_file_without_pem_is_refused(self, tmp_path: Path) -> None:
        junk = tmp_path / "ca.crt"
        junk.write_text("not a certificate")
        with pytest.raises(ValueError, match=r"tls\.caFile: .* holds no PEM block"):
            _tls.client_context(_tls.TlsSettings(ca_file=str(junk)))

    def test_a_certificate_needs_its_key(self, certs: Pki) -> None:
        with pytest.raises(ValueError, match=r"tls\.key: a client certificate needs both"):
            _tls.client_context(_tls.TlsSettings(cert_file=str(certs.client.cert)))

    def test_a_key_of_another_certificate_is_refused_without_echoing_it(self, certs: Pki) -> None:
        key = _pem(certs.stranger_client.key)
        settings = _tls.TlsSettings(cert_pem=_pem(certs.client.cert), key_pem=key)
        with pytest.raises(ValueError, match=r"tls\.cert/tls\.key: not a usable") as raised:
            _tls.client_context(settings)
        assert key.splitlines()[1] not in str(raised.value)

    def test_a_garbled_ca_is_refused(self) -> None:
        garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        with pytest.raises(ValueError, match=r"tls\.ca: no usable CA certificate"):
            _tls.client_context(_tls.TlsSettings(ca_pem=garbled))

    def test_tls_on_an_http_endpoint_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"tls: set for an http:// endpoint.*use https://"):
            http.HttpTransport("http://127.0.0.1:9/x", content_type="a/b", tls=_tls.TlsSettings())
