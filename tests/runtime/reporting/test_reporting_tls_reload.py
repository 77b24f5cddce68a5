"""TLS files rotated in place (a Secret volume the kubelet updates, cert-manager renewing a
certificate): the transports pick the new files up on their next export, a broken
rotation keeps the last good material, and the files are looked at no more often than
``reload_interval``."""

import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpctools import GrpcCollector, serving
from reportertools import Collector, finished_span
from tlstools import Pki, make_pki, server_context

from gatetrace.runtime.reporting import export, http, otlp_grpc
from gatetrace.runtime.reporting import tls as _tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def mtls(certs: Pki) -> AsyncIterator[Collector]:
    server = await Collector(ssl_context=server_context(certs.server, client_ca=certs.ca)).start()
    try:
        yield server
    finally:
        await server.stop()


def _rotate(source: Path, target: Path) -> None:
    """Replace ``target`` atomically with a copy of ``source`` (a new inode, as the
    kubelet's symlink swap gives)."""
    staged = target.with_suffix(".new")
    shutil.copyfile(source, staged)
    os.replace(staged, target)


def _files(directory: Path, pair_cert: Path, pair_key: Path, ca: Path) -> _tls.TlsSettings:
    for source, name in ((ca, "ca.crt"), (pair_cert, "tls.crt"), (pair_key, "tls.key")):
        shutil.copyfile(source, directory / name)
    return _tls.TlsSettings(
        ca_file=str(directory / "ca.crt"),
        cert_file=str(directory / "tls.crt"),
        key_file=str(directory / "tls.key"),
        reload_interval=0.0,
    )


async def test_a_rotated_ca_file_is_trusted_at_the_next_export(
    mtls: Collector, certs: Pki, tmp_path: Path
) -> None:
    settings = _files(tmp_path, certs.client.cert, certs.client.key, certs.stranger_ca.cert)
    transport = http.HttpTransport(f"{mtls.base}/v1/traces", content_type="a/b", tls=settings)
    try:
        before = await transport.post(b"one", 5)
        _rotate(certs.ca.cert, tmp_path / "ca.crt")
        after = await transport.post(b"two", 5)
    finally:
        await transport.close()
    assert before.outcome.reason == "tls_certificate"
    assert after.outcome.result is export.ExportResult.SUCCESS
    assert [r.body for r in mtls.received] == [b"two"]


async def test_a_renewed_client_certificate_is_presented_at_the_next_export(
    mtls: Collector, certs: Pki, tmp_path: Path
) -> None:
    settings = _files(
        tmp_path, certs.stranger_client.cert, certs.stranger_client.key, certs.ca.cert
    )
    transport = http.HttpTransport(f"{mtls.base}/v1/traces", content_type="a/b", tls=settings)
    try:
        refused = await transport.post(b"one", 5)
        _rotate(certs.client.key, tmp_path / "tls.key")
        _rotate(certs.client.cert, tmp_path / "tls.crt")
        accepted = await transport.post(b"two", 5)
    finally:
        await transport.close()
    assert refused.outcome.result is not export.ExportResult.SUCCESS
    assert accepted.outcome.result is export.ExportResult.SUCCESS
    assert [r.client_cn for r in mtls.received] == ["gateway-client"]


async def test_a_broken_rotation_keeps_the_last_good_certificate(
    mtls: Collector, certs: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _files(tmp_path, certs.client.cert, certs.client.key, certs.ca.cert)
    transport = http.HttpTransport(f"{mtls.base}/v1/traces", content_type="a/b", tls=settings)
    try:
        assert (await transport.post(b"one", 5)).outcome.result is export.ExportResult.SUCCESS
        _rotate(certs.stranger_client.key, tmp_path / "tls.key")  # not the certificate's key
        with caplog.at_level(logging.WARNING, "gatetrace.runtime.reporting.tls"):
            kept = await transport.post(b"two", 5)
    finally:
        await transport.close()
    assert kept.outcome.result is export.ExportResult.SUCCESS
    assert "not usable, kept the last" in caplog.text
    assert [r.client_cn for r in mtls.received] == ["gateway-client", "gateway-client"]


def test_files_are_checked_at_most_once_per_interval(certs: Pki, tmp_path: Path) -> None:
    now = [100.0]
    builds: list[str] = []
    shutil.copyfile(certs.ca.cert, tmp_path / "ca.crt")
    settings = _tls.TlsSettings(ca_file=str(tmp_path / "ca.crt"), reload_interval=30.0)

    def build(s: _tls.TlsSettings) -> str:
        builds.append(Path(str(s.ca_file)).read_text())
        return builds[-1]

    reloading = _tls.Reloading(settings, build, clock=lambda: now[0])
    _rotate(certs.stranger_ca.cert, tmp_path / "ca.crt")
    now[0] += 29.0
    assert not reloading.refresh()  # changed, but not looked at yet
    now[0] += 1.0
    assert reloading.refresh()
    assert reloading.value == certs.stranger_ca.cert.read_text()
    now[0] += 30.0
    assert not reloading.refresh()  # looked at, unchanged: not built again
    assert len(builds) == 2


async def test_otlp_grpc_reconnects_with_a_rotated_ca_file(certs: Pki, tmp_path: Path) -> None:
    credentials = grpc.ssl_server_credentials(
        [(certs.server.key.read_bytes(), certs.server.cert.read_bytes())]
    )
    shutil.copyfile(certs.stranger_ca.cert, tmp_path / "ca.crt")
    settings = _tls.TlsSettings(ca_file=str(tmp_path / "ca.crt"), reload_interval=0.0)
    async with serving(GrpcCollector(), credentials) as collector:
        exporter = otlp_grpc.OtlpGrpcExporter(f"https://127.0.0.1:{collector.port}", tls=settings)
        try:
            before = await exporter.export([finished_span()], 5)
            _rotate(certs.ca.cert, tmp_path / "ca.crt")
            after = await exporter.export([finished_span()], 5)
        finally:
            await exporter.close()
    assert before.reason == "tls_certificate"
    assert after.result is export.ExportResult.SUCCESS
    assert len(collector.requests) == 1
