"""The span store's memory bounds (bytes, spans per trace) and its stepwise queries."""

import sys
import tracemalloc

from gt_spans import loop_turns, make_span

from gatetrace.gateway import store
from gatetrace.runtime import ids

BIG = "x" * 4096


def test_the_byte_bound_evicts_the_oldest_spans() -> None:
    spans_store = store.SpanStore(max_spans=1_000_000, max_bytes=2 * 1024 * 1024)
    spans = [make_span(tags={"http.user_agent": BIG}) for _ in range(2000)]
    spans_store.add(spans)
    assert spans_store.bytes <= spans_store.max_bytes
    kept = len(spans_store)
    assert 300 < kept < 600  # ~4.9 KB each
    assert spans_store.evicted == 2000 - kept
    assert spans_store.trace(spans[-1].trace_id)  # the newest stay
    assert not spans_store.trace(spans[0].trace_id)


def test_the_estimate_covers_what_the_spans_really_hold() -> None:
    """retained_bytes is an estimate: it must not undercount the real allocations of spans
    carrying client strings, or the byte bound would not bound memory."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        spans = [
            make_span(tags={"http.user_agent": "u" * n, "url.path": "/p" * (n // 4)})
            for n in range(100, 4100, 4)
        ]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    real = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    estimated = sum(store.retained_bytes(s) for s in spans)
    assert estimated >= real * 0.9, (estimated, real)
    assert estimated <= real * 2.5, (estimated, real)
    assert sys.getsizeof(spans) > 0


def test_one_trace_cannot_grow_without_end() -> None:
    spans_store = store.SpanStore(max_spans_per_trace=100)
    trace_id = ids.new_trace_id()
    spans_store.add(make_span(trace_id=trace_id) for _ in range(250))
    assert len(spans_store.trace(trace_id)) == 100
    assert spans_store.dropped == 150
    other = make_span()
    spans_store.add([other])
    assert spans_store.trace(other.trace_id) == [other]


def test_one_trace_is_bounded_in_bytes_too() -> None:
    spans_store = store.SpanStore(max_bytes=16 * 1024 * 1024)  # a trace: at most 1 MiB
    trace_id = ids.new_trace_id()
    spans_store.add(make_span(trace_id=trace_id, tags={"big": BIG * 4}) for _ in range(200))
    held = spans_store.trace(trace_id)
    assert sum(store.retained_bytes(s) for s in held) <= 1024 * 1024
    assert spans_store.dropped == 200 - len(held)


async def test_scanning_queries_yield_to_the_event_loop() -> None:
    spans_store = store.SpanStore(max_spans=200_000)
    spans_store.add(make_span(service="svc", name=f"op{i % 7}") for i in range(20_000))
    query = store.TraceQuery(service="svc", tags=(("no", "match"),), limit=10)
    found, searched = await loop_turns(spans_store.find_traces_async(query))
    assert found == []
    _, deps = await loop_turns(spans_store.dependencies_async(2_000_000_000_000_000_000, 10**18))
    result, stat = await loop_turns(spans_store.stats_async(service="svc", window_seconds=10**10))
    # 20,000 spans in steps of STEP: the loop ran between the steps
    assert min(searched, deps, stat) >= 20_000 // store.STEP - 1, (searched, deps, stat)
    assert result.count == 20_000
    # the same answers as the synchronous forms
    assert spans_store.find_traces(query) == []
    assert spans_store.stats(service="svc", window_seconds=10**10).count == 20_000


async def test_age_eviction_after_a_quiet_spell_runs_in_steps() -> None:
    now = [1000.0]
    spans_store = store.SpanStore(max_spans=100_000, max_age_seconds=60, clock=lambda: now[0])
    spans_store.add(make_span() for _ in range(10_000))
    now[0] += 3600
    await spans_store.evict_async()
    assert len(spans_store) == 0 and spans_store.bytes == 0
