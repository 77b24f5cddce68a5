"""The batching engine: batching, bounded queue, retries, deadlines, fan-out, faults.

Fault tests talk to a real HTTP server on 127.0.0.1 (down, 503 + Retry-After,
hanging, 400/500) through the real zipkin exporter.
"""

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest
from aiohttp import web
from reportertools import RESOURCE, Collector, finished_span, free_port, gateway_spans, hang_forever

from gatetrace.runtime import metrics, span, tracer
from gatetrace.runtime.reporting import engine, export, jaeger_collector, memory, zipkin


def memory_engine(
    settings: engine.BatchSettings, registry: metrics.Registry | None = None
) -> tuple[engine.BatchingProcessor, memory.RingBufferSink]:
    sink = memory.RingBufferSink(100_000)
    return engine.BatchingProcessor(memory.MemoryExporter(sink), settings, registry), sink


def zipkin_engine(
    endpoint: str, settings: engine.BatchSettings, registry: metrics.Registry | None = None
) -> engine.BatchingProcessor:
    return engine.BatchingProcessor(zipkin.ZipkinExporter(endpoint, gzip=False), settings, registry)


async def wait_until(condition: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def test_settings_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        engine.BatchSettings(max_batch_size=0)
    with pytest.raises(ValueError, match="max_batch_size: 600 exceeds max_queue_size 500"):
        engine.BatchSettings(max_queue_size=500, max_batch_size=600)
    with pytest.raises(ValueError, match="flush_interval_ms"):
        engine.BatchSettings(flush_interval_ms=-1)


async def test_full_batch_is_sent_without_waiting_for_the_interval() -> None:
    processor, sink = memory_engine(
        engine.BatchSettings(max_batch_size=10, flush_interval_ms=60_000)
    )
    processor.start()
    spans = gateway_spans(25)
    for s in spans:
        processor.on_end(s)
    await wait_until(lambda: len(sink) == 20)
    await asyncio.sleep(0.05)
    assert len(sink) == 20  # the last 5 wait for the interval (or a flush)
    assert processor.queue_depth() == 5
    assert await processor.force_flush(1)
    assert sink.spans() == spans
    await processor.shutdown(1)


async def test_partial_batch_is_sent_after_the_interval() -> None:
    processor, sink = memory_engine(engine.BatchSettings(max_batch_size=100, flush_interval_ms=50))
    processor.start()
    for s in gateway_spans(3):
        processor.on_end(s)
    await asyncio.sleep(0)
    assert len(sink) == 0
    await wait_until(lambda: len(sink) == 3, timeout=2)
    m = processor.metrics
    assert m.queued.value(m.labels) == 3
    assert m.exported.value(m.labels) == 3
    assert m.batches.value(m.labels) == 1
    assert m.export_seconds.count(m.labels) == 1
    await processor.shutdown(1)


async def test_full_queue_drops_and_counts() -> None:
    processor, sink = memory_engine(engine.BatchSettings(max_queue_size=10, max_batch_size=5))
    for s in gateway_spans(25):  # not started yet: nothing drains the queue
        processor.on_end(s)
    m = processor.metrics
    assert processor.queue_depth() == 10
    assert m.queue_depth.value(m.labels) == 10
    assert m.dropped_count("queue_full") == 15
    assert m.queued.value(m.labels) == 10
    processor.start()
    assert await processor.force_flush(1)
    assert len(sink) == 10
    await processor.shutdown(1)


async def test_on_end_from_another_thread_wakes_the_loop() -> None:
    processor, sink = memory_engine(
        engine.BatchSettings(max_batch_size=10, flush_interval_ms=60_000)
    )
    processor.start()
    spans = gateway_spans(10)

    def produce() -> None:
        for s in spans:
            processor.on_end(s)

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join()
    await wait_until(lambda: len(sink) == 10)
    await processor.shutdown(1)


async def test_backend_down_enqueue_stays_bounded_then_resumes() -> None:
    port = free_port()
    settings = engine.BatchSettings(
        max_queue_size=100,
        max_batch_size=10,
        flush_interval_ms=10,
        export_timeout_ms=500,
        initial_backoff_ms=5,
        max_backoff_ms=20,
        max_retry_elapsed_ms=60_000,
    )
    processor = zipkin_engine(f"http://127.0.0.1:{port}/api/v2/spans", settings)
    processor.start()
    m = processor.metrics
    for _ in range(20):  # the request path keeps going while exports fail
        for s in gateway_spans(50):
            processor.on_end(s)
            assert processor.queue_depth() <= 100
        await asyncio.sleep(0.01)
    assert m.failure_count("connection_refused") >= 2
    assert m.dropped_count("queue_full") >= 1000 - 100 - 10
    assert m.exported.value(m.labels) == 0
    collector = await Collector().start(port)  # the backend comes back
    try:
        await wait_until(lambda: m.exported.value(m.labels) > 0, timeout=3)
        assert await processor.force_flush(3)
        accepted = m.queued.value(m.labels)
        assert m.exported.value(m.labels) == accepted  # the retried batch was not lost
        assert sum(len(r.body) > 2 for r in collector.received) >= 1
    finally:
        await processor.shutdown(1)
        await collector.stop()


async def test_retry_after_is_honoured(collector: Collector) -> None:
    seen: list[float] = []

    async def unavailable_once(request: web.Request, attempt: int) -> web.StreamResponse:
        seen.append(time.monotonic())
        if attempt == 1:
            return web.Response(status=503, headers={"Retry-After": "1"})
        return web.Response(status=202)

    collector.respond = unavailable_once
    processor = zipkin_engine(
        f"{collector.base}/api/v2/spans",
        engine.BatchSettings(max_batch_size=5, flush_interval_ms=10, initial_backoff_ms=1),
    )
    processor.start()
    for s in gateway_spans(5):
        processor.on_end(s)
    assert await processor.force_flush(4)
    m = processor.metrics
    assert collector.attempts == 2
    assert seen[1] - seen[0] >= 0.95
    assert m.failure_count("http_503") == 1
    assert m.exported.value(m.labels) == 5
    assert m.batches.value(m.labels) == 2
    await processor.shutdown(1)


@pytest.mark.parametrize("status", [429, 502, 504])
async def test_retryable_statuses_back_off_and_succeed(collector: Collector, status: int) -> None:
    async def flaky(request: web.Request, attempt: int) -> web.StreamResponse:
        return web.Response(status=status if attempt <= 2 else 200)

    collector.respond = flaky
    processor = zipkin_engine(
        f"{collector.base}/api/v2/spans",
        engine.BatchSettings(max_batch_size=3, flush_interval_ms=10, initial_backoff_ms=20),
    )
    processor.start()
    for s in gateway_spans(3):
        processor.on_end(s)
    started = time.monotonic()
    assert await processor.force_flush(3)
    assert time.monotonic() - started >= 0.01 + 0.02  # two backoffs, jitter >= half
    m = processor.metrics
    assert collector.attempts == 3
    assert m.failure_count(f"http_{status}") == 2
    assert m.exported.value(m.labels) == 3
    await processor.shutdown(1)


@pytest.mark.parametrize("status", [400, 500])
async def test_non_retryable_statuses_drop_at_once(collector: Collector, status: int) -> None:
    async def refuse(request: web.Request, attempt: int) -> web.StreamResponse:
        return web.Response(status=status)

    collector.respond = refuse
    processor = zipkin_engine(
        f"{collector.base}/api/v2/spans",
        engine.BatchSettings(max_batch_size=4, flush_interval_ms=10, initial_backoff_ms=1),
    )
    processor.start()
    for s in gateway_spans(8):
        processor.on_end(s)
    assert await processor.force_flush(3)
    m = processor.metrics
    assert collector.attempts == 2  # one per batch, no retries
    assert m.failure_count(f"http_{status}") == 2
    assert m.dropped_count("export_failed") == 8
    await processor.shutdown(1)


async def test_hanging_backend_times_out_and_gives_up(collector: Collector) -> None:
    collector.respond = hang_forever
    processor = zipkin_engine(
        f"{collector.base}/api/v2/spans",
        engine.BatchSettings(
            max_queue_size=50,
            max_batch_size=5,
            flush_interval_ms=10,
            export_timeout_ms=100,
            initial_backoff_ms=10,
            # room for several timed-out attempts even on a loaded machine (CI once
            # took ~300 ms for the first attempt, leaving no time for a retry)
            max_retry_elapsed_ms=1000,
        ),
    )
    processor.start()
    for s in gateway_spans(5):
        processor.on_end(s)
    assert not await processor.force_flush(0.1)  # a flush has a deadline too
    for s in gateway_spans(200):  # meanwhile the request path is unaffected
        processor.on_end(s)
    assert processor.queue_depth() <= 50
    m = processor.metrics
    await wait_until(lambda: m.dropped_count("export_failed") >= 5, timeout=10)
    assert m.failure_count("timeout") >= 2
    assert m.dropped_count("queue_full") >= 150
    started = time.monotonic()
    await processor.shutdown(0.3)
    assert time.monotonic() - started < 1.5
    total = m.queued.value(m.labels)
    settled = sum(m.dropped_count(r) for r in ("export_failed", "shutdown")) + m.exported.value(
        m.labels
    )
    assert settled == total  # every accepted span is accounted for exactly once


async def test_shutdown_drains_what_it_can() -> None:
    processor, sink = memory_engine(
        engine.BatchSettings(max_batch_size=7, flush_interval_ms=60_000)
    )
    processor.start()
    spans = gateway_spans(30)
    for s in spans:
        processor.on_end(s)
    await processor.shutdown(2)
    assert sink.spans() == spans
    processor.on_end(finished_span())
    assert processor.metrics.dropped_count("shutdown") == 1
    await processor.shutdown(1)  # idempotent


async def test_shutdown_without_start_exports_queued_spans() -> None:
    processor, sink = memory_engine(engine.BatchSettings())
    for s in gateway_spans(3):
        processor.on_end(s)
    await processor.shutdown(1)
    assert len(sink) == 3


class _Exploding:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def export(self, spans: Sequence[span.Span], timeout: float) -> export.ExportOutcome:
        self.calls += 1
        raise RuntimeError("bug in an exporter")

    async def close(self) -> None:
        self.closed = True


async def test_a_raising_exporter_is_a_counted_failure(caplog: pytest.LogCaptureFixture) -> None:
    exporter = _Exploding()
    processor = engine.BatchingProcessor(
        exporter, engine.BatchSettings(max_batch_size=2, flush_interval_ms=10)
    )
    processor.start()
    for s in gateway_spans(4):
        processor.on_end(s)
    assert await processor.force_flush(2)
    await processor.shutdown(1)
    m = processor.metrics
    assert exporter.calls == 2
    assert exporter.closed
    assert m.failure_count("exporter_error") == 2
    assert m.dropped_count("export_failed") == 4
    assert "bug in an exporter" in caplog.text


async def test_fan_out_slow_backend_does_not_starve_another(collector: Collector) -> None:
    collector.respond = hang_forever
    registry = metrics.Registry()
    settings = engine.BatchSettings(
        max_queue_size=20, max_batch_size=5, flush_interval_ms=10, export_timeout_ms=2000
    )
    stuck = zipkin_engine(f"{collector.base}/api/v2/spans", settings, registry)
    fast, sink = memory_engine(settings, registry)
    fan_out = engine.FanOutProcessor([stuck, fast])
    fan_out.start()
    for _ in range(10):
        for s in gateway_spans(10):
            fan_out.on_end(s)
        await asyncio.sleep(0.02)
    assert len(sink) == 100
    assert stuck.metrics.dropped_count("queue_full") > 0
    assert fast.metrics.dropped_count("queue_full") == 0
    assert not await fan_out.force_flush(0.05)
    await fan_out.shutdown(0.2)
    text = metrics.render_prometheus([registry])
    assert (
        'gatetrace_reporter_spans_exported_total{reporter="memory",reporter_instance="0"} 100'
        in text
    )
    assert 'gatetrace_reporter_spans_dropped_total{reporter="zipkin",reporter_instance="0",' in text
    assert 'gatetrace_reporter_queue_depth{reporter="zipkin",reporter_instance="0"} 0' in text


def test_two_reporters_of_one_type_have_separate_series() -> None:
    registry = metrics.Registry()
    settings = engine.BatchSettings(max_queue_size=1, max_batch_size=1)
    first = engine.BatchingProcessor(
        memory.MemoryExporter(memory.RingBufferSink()), settings, registry
    )
    second = engine.BatchingProcessor(
        memory.MemoryExporter(memory.RingBufferSink()), settings, registry, instance="1"
    )
    for s in gateway_spans(3):
        first.on_end(s)
    second.on_end(finished_span())
    assert first.metrics.dropped_count("queue_full") == 2
    assert second.metrics.dropped_count("queue_full") == 0
    assert second.metrics.queued.value(("memory", "1")) == 1


def test_fan_out_survives_a_raising_processor(caplog: pytest.LogCaptureFixture) -> None:
    class Raising:
        def on_end(self, s: span.Span) -> None:
            raise RuntimeError("broken processor")

        def start(self) -> None: ...

        async def force_flush(self, timeout: float = 5.0) -> bool:
            return True

        async def shutdown(self, timeout: float = 5.0) -> None: ...

    processor, _ = memory_engine(engine.BatchSettings())
    fan_out = engine.FanOutProcessor([Raising(), processor])
    fan_out.on_end(finished_span())
    fan_out.on_end(finished_span())
    assert processor.queue_depth() == 2
    assert fan_out.errors == 2
    assert len(caplog.records) == 1


async def test_tracer_hands_finished_spans_to_the_engine() -> None:
    processor, sink = memory_engine(engine.BatchSettings(flush_interval_ms=10))
    processor.start()
    tr = tracer.Tracer(RESOURCE, processor=processor)
    with tr.start_as_current("outer") as outer, tr.start_as_current("inner") as inner:
        inner.set_tag("k", "v")
    assert await processor.force_flush(1)
    assert [s.name for s in sink.spans()] == ["inner", "outer"]
    assert sink.spans()[0].parent_id == outer.span_id
    await processor.shutdown(1)


def test_engine_feeds_client_side_drop_counts_to_jaeger_exporters() -> None:
    exporter = jaeger_collector.JaegerCollectorExporter("http://127.0.0.1:1/api/traces")
    processor = engine.BatchingProcessor(
        exporter, engine.BatchSettings(max_queue_size=1, max_batch_size=1)
    )
    for s in gateway_spans(4):
        processor.on_end(s)
    assert exporter.full_queue_dropped is not None
    assert exporter.full_queue_dropped() == 3


async def test_many_threads_enqueue_while_exporting_each_span_once() -> None:
    processor, sink = memory_engine(
        engine.BatchSettings(max_queue_size=100_000, max_batch_size=64, flush_interval_ms=5)
    )
    processor.start()
    batches = [gateway_spans(1000) for _ in range(4)]

    def produce(batch: list[span.Span]) -> None:
        for s in batch:
            processor.on_end(s)

    threads = [threading.Thread(target=produce, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:  # joined off the loop, so the loop exports meanwhile
        await asyncio.to_thread(thread.join)
    assert await processor.force_flush(3)
    exported = sink.spans()
    assert len(exported) == 4000
    assert {id(s) for s in exported} == {id(s) for b in batches for s in b}
    await processor.shutdown(1)
