"""The ``otlpGrpc`` reporter against a real gRPC server in-process (opentelemetry-proto's
generated ``TraceService``): what arrives, gzip on the wire, metadata, status codes per
the OTLP specification, deadlines, TLS and mutual TLS, and the missing optional extra."""

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpctools import ByteCounter, GrpcCollector, Response, serving
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb2
from reportertools import finished_span, free_port, gateway_spans
from tlstools import SERVER_NAME, Pki, make_pki

from gatetrace.runtime.reporting import engine, export, otlp_grpc
from gatetrace.runtime.reporting import tls as _tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _server_credentials(certs: Pki, *, named: bool = False, mutual: bool = False) -> Any:
    pair = certs.named if named else certs.server
    return grpc.ssl_server_credentials(
        [(pair.key.read_bytes(), pair.cert.read_bytes())],
        root_certificates=certs.ca.cert.read_bytes() if mutual else None,
        require_client_auth=mutual,
    )


async def _export(
    exporter: otlp_grpc.OtlpGrpcExporter, spans: list[Any], timeout: float = 5
) -> export.ExportOutcome:
    try:
        return await exporter.export(spans, timeout)
    finally:
        await exporter.close()


async def test_spans_arrive_as_an_export_request_with_the_headers() -> None:
    spans = gateway_spans(3)
    async with serving(GrpcCollector()) as collector:
        exporter = otlp_grpc.OtlpGrpcExporter(
            f"http://127.0.0.1:{collector.port}", headers={"authorization": "Bearer t0ken"}
        )
        outcome = await _export(exporter, spans)
    assert outcome.result is export.ExportResult.SUCCESS
    received = collector.spans()
    assert [s.trace_id.hex() for s in received] == [f"{s.trace_id:032x}" for s in spans]
    assert {s.name for s in received} == {"GET /api/users/{id}"}
    assert collector.metadata[0]["authorization"] == "Bearer t0ken"


@pytest.mark.parametrize("gzip", [True, False])
async def test_gzip_is_what_crosses_the_wire(gzip: bool) -> None:
    spans = gateway_spans(200)  # repetitive tags: compress well
    body, _ = await otlp_grpc.otlp.OtlpBatches("t", "t", max_value_length=32768).encode(spans)  # type: ignore[misc]
    async with (
        serving(GrpcCollector()) as collector,
        ByteCounter(collector.port).running() as relay,
    ):
        exporter = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{relay.port}", gzip=gzip)
        outcome = await _export(exporter, spans)
    assert outcome.result is export.ExportResult.SUCCESS
    assert len(collector.spans()) == 200  # the server decoded what it got
    if gzip:
        assert relay.sent < len(body) / 3
    else:
        assert relay.sent > len(body)


async def _abort(context: Any, code: grpc.StatusCode, status: bytes | None = None) -> None:
    trailers = (("grpc-status-details-bin", status),) if status is not None else ()
    await context.abort(code, "refused by the test", trailing_metadata=trailers)


def _retry_info(seconds: int, nanos: int) -> bytes:
    info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)
    )
    status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="slow")
    status.details.add().Pack(info)
    return bytes(status.SerializeToString())


@pytest.mark.parametrize(
    ("code", "details", "result", "reason", "retry_after"),
    [
        (grpc.StatusCode.UNAVAILABLE, None, "retryable", "grpc_unavailable", None),
        (grpc.StatusCode.ABORTED, None, "retryable", "grpc_aborted", None),
        (grpc.StatusCode.DATA_LOSS, None, "retryable", "grpc_data_loss", None),
        (grpc.StatusCode.INVALID_ARGUMENT, None, "failure", "grpc_invalid_argument", None),
        (grpc.StatusCode.UNAUTHENTICATED, None, "failure", "grpc_unauthenticated", None),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, "failure", "grpc_resource_exhausted", None),
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            _retry_info(2, 500_000_000),
            "retryable",
            "grpc_resource_exhausted",
            2.5,
        ),
    ],
)
async def test_status_codes_map_as_the_otlp_specification_says(
    code: grpc.StatusCode,
    details: bytes | None,
    result: str,
    reason: str,
    retry_after: float | None,
) -> None:
    async def answer(context: Any, attempt: int) -> None:
        await _abort(context, code, details)

    async with serving(GrpcCollector(answer)) as collector:
        outcome = await _export(
            otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{collector.port}"), [finished_span()]
        )
    assert (outcome.result.value, outcome.reason, outcome.retry_after) == (
        result,
        reason,
        retry_after,
    )


async def test_a_retry_sends_the_same_bytes_and_partial_success_counts_rejected() -> None:
    async def answer(context: Any, attempt: int) -> Response | None:
        if attempt == 1:
            await _abort(context, grpc.StatusCode.UNAVAILABLE)
        partial = pb2.ExportTracePartialSuccess(rejected_spans=2, error_message="too old")
        return Response(partial_success=partial)

    spans = gateway_spans(5)
    async with serving(GrpcCollector(answer)) as collector:
        exporter = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{collector.port}")
        try:
            first = await exporter.export(spans, 5)
            second = await exporter.export(spans, 5)
        finally:
            await exporter.close()
    assert first.result is export.ExportResult.RETRYABLE
    assert second == export.ExportOutcome.success({"rejected": 2})
    assert collector.attempts == 2


async def test_a_refused_connection_is_retryable_and_fast() -> None:
    exporter = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    outcome = await _export(exporter, [finished_span()], timeout=5)
    assert outcome == export.ExportOutcome(export.ExportResult.RETRYABLE, "connection_refused")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("peer", ["hanging_rpc", "silent_socket"])
async def test_a_dead_collector_costs_no_more_than_the_deadline(peer: str) -> None:
    """A server that never answers, and a socket that accepts and never speaks HTTP/2."""
    release = asyncio.Event()

    async def hang(context: Any, attempt: int) -> None:
        await release.wait()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    socket_server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        async with serving(GrpcCollector(hang)) as collector:
            port = (
                collector.port
                if peer == "hanging_rpc"
                else socket_server.sockets[0].getsockname()[1]
            )
            exporter = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{port}")
            started = time.monotonic()
            outcome = await _export(exporter, [finished_span()], timeout=0.3)
            elapsed = time.monotonic() - started
            release.set()
    finally:
        socket_server.close()
    assert outcome == export.ExportOutcome(export.ExportResult.RETRYABLE, "timeout")
    assert 0.25 < elapsed < 1.5


async def test_the_engine_bounds_apply_to_the_grpc_path() -> None:
    """A hanging collector: the request path's ``on_end`` stays an append, the queue stays
    bounded, every attempt ends at the export timeout."""
    release = asyncio.Event()

    async def hang(context: Any, attempt: int) -> None:
        await release.wait()

    async with serving(GrpcCollector(hang)) as collector:
        settings = engine.BatchSettings(
            max_queue_size=100,
            max_batch_size=50,
            flush_interval_ms=10,
            export_timeout_ms=200,
            initial_backoff_ms=5,
            max_backoff_ms=10,
            max_retry_elapsed_ms=600,
        )
        exporter = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{collector.port}")
        processor = engine.BatchingProcessor(exporter, settings)
        processor.start()
        worst = 0.0
        for _ in range(10):
            for span in gateway_spans(50):
                started = time.perf_counter()
                processor.on_end(span)
                worst = max(worst, time.perf_counter() - started)
                assert processor.queue_depth() <= 100
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        m = processor.metrics
        release.set()
        await processor.shutdown(1)
    assert worst < 0.01
    assert m.failure_count("timeout") >= 2
    assert m.dropped_count("queue_full") > 0


class TestTls:
    async def test_a_private_ca_verifies_the_collector(self, certs: Pki) -> None:
        async with serving(GrpcCollector(), _server_credentials(certs)) as collector:
            exporter = otlp_grpc.OtlpGrpcExporter(
                f"https://127.0.0.1:{collector.port}",
                tls=_tls.TlsSettings(ca_pem=certs.ca.cert.read_text()),
            )
            outcome = await _export(exporter, [finished_span()])
        assert outcome.result is export.ExportResult.SUCCESS

    async def test_an_untrusted_collector_is_a_counted_failure(self, certs: Pki) -> None:
        async with serving(GrpcCollector(), _server_credentials(certs)) as collector:
            exporter = otlp_grpc.OtlpGrpcExporter(
                f"https://127.0.0.1:{collector.port}",
                tls=_tls.TlsSettings(ca_file=str(certs.stranger_ca.cert)),
            )
            outcome = await _export(exporter, [finished_span()])
        assert outcome == export.ExportOutcome(export.ExportResult.FAILURE, "tls_certificate")
        assert collector.requests == []

    async def test_server_name_overrides_the_name_verified(self, certs: Pki) -> None:
        async with serving(GrpcCollector(), _server_credentials(certs, named=True)) as collector:
            exporter = otlp_grpc.OtlpGrpcExporter(
                f"https://127.0.0.1:{collector.port}",
                tls=_tls.TlsSettings(ca_file=str(certs.ca.cert), server_name=SERVER_NAME),
            )
            outcome = await _export(exporter, [finished_span()])
        assert outcome.result is export.ExportResult.SUCCESS

    async def test_mutual_tls_presents_the_client_certificate(self, certs: Pki) -> None:
        credentials = _server_credentials(certs, mutual=True)
        with_cert = _tls.TlsSettings(
            ca_file=str(certs.ca.cert),
            cert_file=str(certs.client.cert),
            key_file=str(certs.client.key),
        )
        without = _tls.TlsSettings(ca_file=str(certs.ca.cert))
        async with serving(GrpcCollector(), credentials) as collector:
            url = f"https://127.0.0.1:{collector.port}"
            accepted = await _export(
                otlp_grpc.OtlpGrpcExporter(url, tls=with_cert), [finished_span()]
            )
            refused = await _export(otlp_grpc.OtlpGrpcExporter(url, tls=without), [finished_span()])
        assert accepted.result is export.ExportResult.SUCCESS
        assert refused.result is not export.ExportResult.SUCCESS
        assert len(collector.requests) == 1


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:4317: Tls"
            " handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL"
            " routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: unable to get local issuer",
            "tls_certificate",
        ),
        ("Ssl handshake failed: SSL_ERROR_SSL: WRONG_VERSION_NUMBER", "tls_handshake"),
        ("DNS resolution failed for tls-collector.internal:4317", None),
        ("failed to connect to all addresses; last error: Socket closed", None),
    ],
)
def test_tls_failures_are_told_by_grpcs_words_only(details: str, reason: str | None) -> None:
    assert otlp_grpc._tls_reason(details) == reason


class TestConfiguration:
    def test_the_missing_extra_is_an_error_saying_what_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "grpc", None)  # what an import of a missing package does
        with pytest.raises(ValueError, match=r"otlpGrpc needs .* pip install 'gatetrace\[grpc\]'"):
            otlp_grpc.OtlpGrpcExporter("http://127.0.0.1:4317")

    @pytest.mark.parametrize(
        ("endpoint", "target"),
        [
            ("http://otel.observability", ("otel.observability:4317", False)),
            ("https://otel:14317/", ("otel:14317", True)),
            ("http://[::1]:4317", ("[::1]:4317", False)),
        ],
    )
    def test_endpoint_targets(self, endpoint: str, target: tuple[str, bool]) -> None:
        assert otlp_grpc.grpc_target(endpoint) == target

    def test_an_endpoint_with_a_path_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"endpoint: an otlpGrpc endpoint has no path"):
            otlp_grpc.OtlpGrpcExporter("http://otel:4317/v1/traces")

    def test_tls_needs_https(self) -> None:
        with pytest.raises(ValueError, match=r"tls: set for an http:// endpoint"):
            otlp_grpc.OtlpGrpcExporter("http://otel:4317", tls=_tls.TlsSettings())

    def test_insecure_skip_verify_is_refused_with_the_way_out(self) -> None:
        with pytest.raises(ValueError, match=r"tls\.insecureSkipVerify: not supported .* tls\.ca"):
            otlp_grpc.OtlpGrpcExporter(
                "https://otel:4317", tls=_tls.TlsSettings(insecure_skip_verify=True)
            )

    def test_tls_material_is_checked_as_for_http(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"tls\.caFile: cannot read"):
            otlp_grpc.OtlpGrpcExporter(
                "https://otel:4317", tls=_tls.TlsSettings(ca_file=str(tmp_path / "none.crt"))
            )

    @pytest.mark.parametrize("name", ["grpc-timeout", "trace-bin", ":authority"])
    def test_metadata_grpc_reserves_is_refused(self, name: str) -> None:
        with pytest.raises(ValueError, match=rf"headers: '{name}' is not usable"):
            otlp_grpc.OtlpGrpcExporter("http://otel:4317", headers={name: "1"})

    def test_metadata_values_must_be_printable_ascii_and_are_not_echoed(self) -> None:
        with pytest.raises(ValueError, match=r"the value of 'authorization' is not") as raised:
            otlp_grpc.OtlpGrpcExporter(
                "http://otel:4317", headers={"authorization": "Bearer s\u00e9cret"}
            )
        assert "cret" not in str(raised.value)
