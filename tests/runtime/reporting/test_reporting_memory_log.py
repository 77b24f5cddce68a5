"""The memory reporter (SpanSink feeding) and the log reporter (JSON lines)."""

import io
import json
import logging
from collections.abc import Sequence

import pytest
from reportertools import RESOURCE_ZIPKIN_TAGS, finished_span, gateway_spans

from gatetrace.runtime import span
from gatetrace.runtime.reporting import export, log, memory


class _IndexingSink:
    """A sink like the gateway's store: indexes by trace id."""

    def __init__(self) -> None:
        self.by_trace: dict[int, list[span.Span]] = {}

    def add(self, spans: Sequence[span.Span]) -> None:
        for s in spans:
            self.by_trace.setdefault(s.trace_id, []).append(s)


async def test_memory_processor_feeds_the_sink_in_batches() -> None:
    sink = _IndexingSink()
    processor = memory.memory_processor(sink)
    processor.start()
    spans = gateway_spans(600)
    for s in spans:
        processor.on_end(s)
    assert await processor.force_flush(2)
    assert sum(len(v) for v in sink.by_trace.values()) == 600
    m = processor.metrics
    assert m.batches.value(m.labels) == 2  # max_batch_size 512
    await processor.shutdown(1)


async def test_a_raising_sink_is_a_failure() -> None:
    class Broken:
        def add(self, spans: Sequence[span.Span]) -> None:
            raise KeyError("index")

    outcome = await memory.MemoryExporter(Broken()).export([finished_span()], 1)
    assert outcome == export.ExportOutcome(export.ExportResult.FAILURE, "KeyError")


def test_ring_buffer_is_bounded() -> None:
    sink = memory.RingBufferSink(5)
    spans = gateway_spans(8)
    sink.add(spans[:3])
    sink.add(spans[3:])
    assert sink.spans() == spans[3:]
    assert len(sink) == 5
    assert sink.evicted == 3
    with pytest.raises(ValueError, match="max_spans"):
        memory.RingBufferSink(0)


async def test_log_exporter_writes_one_json_line_per_span() -> None:
    stream = io.StringIO()
    spans = [finished_span(tags={"bad": "x\udc80", "n": 1}), finished_span()]
    outcome = await log.LogExporter(stream).export(spans, 1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["id"] == f"{spans[0].span_id:016x}"
    assert first["tags"] == {"bad": "x\ufffd", "n": "1", **RESOURCE_ZIPKIN_TAGS}
    assert outcome.truncated == {"invalid_utf8": 1}


async def test_log_exporter_to_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("gatetrace.test.spans")
    with caplog.at_level(logging.INFO, logger="gatetrace.test.spans"):
        await log.LogExporter(logger=logger).export([finished_span("op")], 1)
    (record,) = caplog.records
    assert json.loads(record.getMessage())["name"] == "op"


async def test_log_exporter_closed_stream_is_a_failure() -> None:
    stream = io.StringIO()
    stream.close()
    outcome = await log.LogExporter(stream).export([finished_span()], 1)
    assert outcome.result is export.ExportResult.FAILURE
