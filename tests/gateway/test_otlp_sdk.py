"""The OpenTelemetry Python SDK's own OTLP/HTTP exporter sends to the gateway's receiver;
the spans read back through the query API equal what the SDK recorded (kept beside it by
the SDK's in-memory exporter): ids, parents, names, kinds, times, attributes, events,
links, status and the resource."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serverharness import ALWAYS, AUTH, TOKEN, running, settings_for, upstream

from gatetrace.gateway import server

pytestmark = pytest.mark.timeout(60)

_KINDS = {
    trace.SpanKind.SERVER: "server",
    trace.SpanKind.CLIENT: "client",
    trace.SpanKind.PRODUCER: "producer",
    trace.SpanKind.CONSUMER: "consumer",
}


@contextlib.asynccontextmanager
async def gateway() -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    async with upstream() as up, running(settings_for(up, tracing=ALWAYS)) as pair:
        yield pair


def record(exporter: OTLPSpanExporter) -> tuple[list[ReadableSpan], int]:
    """Spans made through the SDK, exported to the gateway and kept in memory; the trace id."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("sdk-test")
    with tracer.start_as_current_span(
        "POST /checkout",
        kind=trace.SpanKind.SERVER,
        attributes={"http.status_code": 500, "ok": False, "ratio": 0.25, "tags": ["a", "b"]},
    ) as root:
        root.add_event("cart loaded", {"items": 3})
        with tracer.start_as_current_span("charge card", kind=trace.SpanKind.CLIENT) as child:
            child.set_status(trace.Status(trace.StatusCode.ERROR, "card declined"))
        linked = trace.Link(child.get_span_context(), {"why": "retry"})
        with tracer.start_as_current_span("retry", links=[linked]):
            pass
    provider.shutdown()
    spans = list(kept.get_finished_spans())
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    return spans, root.get_span_context().trace_id


def tags(row: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in row["tags"]}


def expected_tags(span: ReadableSpan) -> dict[str, Any]:
    found: dict[str, Any] = {
        k: ('["a","b"]' if isinstance(v, tuple) else v) for k, v in (span.attributes or {}).items()
    }
    if span.kind in _KINDS:
        found["span.kind"] = _KINDS[span.kind]
    if span.status.status_code is trace.StatusCode.ERROR:
        found["error"] = True
        found["otel.status_code"] = "ERROR"
        found["otel.status_description"] = span.status.description
    return found


def check(sent: Sequence[ReadableSpan], got: dict[str, Any]) -> None:
    by_id = {row["spanID"]: row for row in got["spans"]}
    assert len(by_id) == len(sent) == 3
    for span in sent:
        context = span.get_span_context()
        row = by_id[f"{context.span_id:016x}"]
        assert row["traceID"] == f"{context.trace_id:032x}"
        assert row["operationName"] == span.name
        assert row["startTime"] == span.start_time // 1000
        assert row["duration"] == (span.end_time - span.start_time) // 1000  # type: ignore[operator]
        assert tags(row) == expected_tags(span)
        parent = [r["spanID"] for r in row["references"] if r["refType"] == "CHILD_OF"]
        assert parent == ([f"{span.parent.span_id:016x}"] if span.parent else [])
        follows = [r["spanID"] for r in row["references"] if r["refType"] == "FOLLOWS_FROM"]
        assert follows == [f"{link.context.span_id:016x}" for link in span.links]
        assert [{f["key"]: f["value"] for f in log["fields"]} for log in row["logs"]] == [
            {"event": e.name, **dict(e.attributes or {})} for e in span.events
        ]
        assert [log["timestamp"] for log in row["logs"]] == [
            e.timestamp // 1000 for e in span.events
        ]
        process = got["processes"][row["processID"]]
        assert process["serviceName"] == "checkout"
        resource = {t["key"]: t["value"] for t in process["tags"]}
        expected = {k: v for k, v in span.resource.attributes.items() if k != "service.name"}
        assert resource == expected


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
async def test_the_sdks_otlp_http_exporter_lands_its_spans_in_the_query_api(
    compression: Compression,
) -> None:
    async with gateway() as (gw, http):
        exporter = OTLPSpanExporter(
            endpoint=gw.admin_url + "/v1/traces",
            headers={"Authorization": f"Bearer {TOKEN}"},
            compression=compression,
            timeout=10,
        )
        sent, trace_id = await asyncio.to_thread(record, exporter)
        async with http.get(f"{gw.admin_url}/api/traces/{trace_id:032x}", headers=AUTH) as got:
            assert got.status == 200
            check(sent, (await got.json())["data"][0])


async def test_the_sdk_exporter_reports_failure_on_a_wrong_token_and_nothing_is_stored() -> None:
    async with gateway() as (gw, _):
        exporter = OTLPSpanExporter(
            endpoint=gw.admin_url + "/v1/traces",
            headers={"Authorization": "Bearer not-the-token"},
            timeout=5,
        )
        provider = TracerProvider()
        kept = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(kept))
        with provider.get_tracer("t").start_as_current_span("x"):
            pass
        result = await asyncio.to_thread(exporter.export, kept.get_finished_spans())
        assert result is SpanExportResult.FAILURE
        assert len(gw.store) == 0
