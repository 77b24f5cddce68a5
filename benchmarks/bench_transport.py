"""OTLP over gRPC: gatetrace's ``otlpGrpc`` exporter against the OpenTelemetry SDK's
gRPC exporter, same run, same collector.

Row: CPU time of this process per span to export a batch of 512 typical gateway
spans (encode + gzip + one unary ``TraceService/Export`` call, answer read), ours
(:class:`~gatetrace.runtime.reporting.otlp_grpc.OtlpGrpcExporter` on ``grpc.aio``)
against opentelemetry-exporter-otlp-proto-grpc's ``OTLPSpanExporter`` (the SDK's
encoder, blocking ``grpc``), both with gzip. The collector is a plain grpcio
server in a child process, so its work is not counted; every export must come
back a success (else the row is not measured). Rounds are interleaved, fresh
spans each round; the median round counts. Goal <= 0.5x. Run:
``.venv/bin/python -m benchmarks --only transport``.
"""

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc import trace_exporter
from opentelemetry.sdk.trace import export as sdk_export

from benchmarks import bench_reporting, common
from gatetrace.runtime.reporting import export, otlp_grpc

BATCH = bench_reporting.BATCH
_SERVER = """
import sys, grpc
from concurrent import futures
handler = grpc.method_handlers_generic_handler(
    "opentelemetry.proto.collector.trace.v1.TraceService",
    {"Export": grpc.unary_unary_rpc_method_handler(lambda request, context: b"")},
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
"""


@contextlib.contextmanager
def _collector() -> Iterator[int]:
    """A gRPC server that accepts every Export (bytes in, empty response out)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


def _cpu_per_span_us(send: Any) -> float:
    started = time.process_time()
    send()
    return (time.process_time() - started) / BATCH * 1e6


def measure(rounds: int = 9) -> tuple[float, float]:
    """(ours, the SDK's) CPU µs per span, medians of interleaved rounds."""
    ours_times: list[float] = []
    peer_times: list[float] = []
    with _collector() as port:
        loop = asyncio.new_event_loop()
        ours = otlp_grpc.OtlpGrpcExporter(f"http://127.0.0.1:{port}", gzip=True)
        peer = trace_exporter.OTLPSpanExporter(
            endpoint=f"127.0.0.1:{port}",
            insecure=True,
            compression=trace_exporter.Compression.Gzip,
        )
        try:
            for salt in range(rounds + 1):  # round 0 warms up both (connections, caches)
                ours_batch = bench_reporting.ours_spans(salt)
                peer_batch = bench_reporting.otel_spans(salt)

                def send_ours(batch: Any = ours_batch) -> None:
                    outcome = loop.run_until_complete(ours.export(batch, 10.0))
                    assert outcome.result is export.ExportResult.SUCCESS, outcome

                def send_peer(batch: Any = peer_batch) -> None:
                    result = peer.export(batch)
                    assert result is sdk_export.SpanExportResult.SUCCESS, result

                ours_us, peer_us = _cpu_per_span_us(send_ours), _cpu_per_span_us(send_peer)
                if salt:
                    ours_times.append(ours_us)
                    peer_times.append(peer_us)
        finally:
            loop.run_until_complete(ours.close())
            loop.close()
            peer.shutdown()
    return statistics.median(ours_times), statistics.median(peer_times)


def run() -> list[common.Row]:
    ours, peer = measure()
    return [
        common.Row(
            name="otlp grpc export (CPU per span, batch 512, gzip) vs OTel SDK",
            ours=ours,
            peer=peer,
            unit="us",
            goal_ratio=0.5,
            peer_name="opentelemetry-exporter-otlp-proto-grpc 1.27",
        )
    ]


def main() -> None:
    for row in run():
        print(
            f"{row.name}: ours {row.ours:.2f} {row.unit}, peer {row.peer:.2f} {row.unit}, "
            f"ratio {row.ratio:.2f} (goal <= {row.goal_ratio:g})"
        )


if __name__ == "__main__":
    main()
