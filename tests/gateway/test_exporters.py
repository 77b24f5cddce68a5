"""The gateway's exporter factory: each reporter model becomes its runtime exporter;
the memory reporter writes into the gateway's store and sets its bounds."""

import asyncio
import socket

import pytest
from gt_spans import make_span

from gatetrace.gateway import exporters, store
from gatetrace.policy import model, reporters
from gatetrace.runtime.reporting import export

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("reporter", "name"),
    [
        (reporters.MemoryReporter(), "memory"),
        (reporters.LogReporter(), "log"),
        (reporters.ZipkinReporter(endpoint="http://127.0.0.1:9/api/v2/spans"), "zipkin"),
        (reporters.OtlpHttpReporter(endpoint="http://127.0.0.1:9/v1/traces"), "otlpHttp"),
        (reporters.OtlpGrpcReporter(endpoint="http://127.0.0.1:9"), "otlpGrpc"),
        (reporters.JaegerAgentReporter(host="127.0.0.1", port=6831), "jaegerAgent"),
        (
            reporters.JaegerCollectorReporter(endpoint="http://127.0.0.1:9/api/traces"),
            "jaegerCollector",
        ),
    ],
)
async def test_every_reporter_type_has_an_exporter(reporter: reporters.Reporter, name: str) -> None:
    exporter = exporters.factory(store.SpanStore())(reporter)
    assert exporter.name == name
    await exporter.close()


async def test_memory_exporter_writes_the_store() -> None:
    span_store = store.SpanStore()
    exporter = exporters.factory(span_store)(reporters.MemoryReporter())
    s = make_span()
    outcome = await exporter.export([s], 1.0)
    assert outcome.result is export.ExportResult.SUCCESS
    assert span_store.trace(s.trace_id) == [s]


async def test_jaeger_agent_exporter_sends_udp_to_loopback() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    try:
        exporter = exporters.factory(store.SpanStore())(
            reporters.JaegerAgentReporter(host="127.0.0.1", port=port)
        )
        outcome = await exporter.export([make_span()], 2.0)
        assert outcome.result is export.ExportResult.SUCCESS
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65536), 5)
        assert b"emitBatch" in data
        await exporter.close()
    finally:
        sock.close()


def test_configure_store_uses_the_memory_reporter_bounds() -> None:
    span_store = store.SpanStore()
    cfg = model.TracingConfig.model_validate(
        {"reporters": [{"type": "log"}, {"type": "memory", "maxSpans": 7, "maxAgeSeconds": 9}]}
    )
    exporters.configure_store(span_store, cfg)
    assert (span_store.max_spans, span_store.max_age_seconds) == (7, 9.0)
    untouched = store.SpanStore()
    exporters.configure_store(
        untouched, model.TracingConfig.model_validate({"reporters": [{"type": "log"}]})
    )
    assert untouched.max_spans == 100_000
