"""The span store against hostile shapes: wide characters, baggage and tracestate the byte
estimate must see; eviction after a quiet spell or under a smaller bound done in bounded
steps; searches whose cost grows with the number of tags asked for."""

import asyncio
import json
import logging
import tracemalloc
from collections.abc import Callable

import pytest
from adminharness import AUTH, running_admin
from gt_spans import loop_turns, make_span

from gatetrace.gateway import jaeger_json, query_api, store
from gatetrace.runtime import baggage
from gatetrace.runtime import span as span_mod
from gatetrace.runtime.reporting import memory

pytestmark = pytest.mark.timeout(60)


def _measure(make: Callable[[], list[span_mod.Span]]) -> tuple[int, int]:
    """Bytes really allocated for the spans ``make()`` returns, and the store's estimate."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        spans = make()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    real = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return real, sum(store.retained_bytes(s) for s in spans)


def test_the_estimate_covers_wide_characters() -> None:
    """CPython keeps a string of emoji in 4 bytes a character: a client sending them must
    not get four times the byte bound."""

    def make() -> list[span_mod.Span]:
        return [
            make_span(
                name="GET /" + "ж" * 40 + str(n),
                tags={"http.user_agent": "😀" * n + str(n), "url.path": "/ł" * (n // 4)},
            )
            for n in range(100, 4000, 8)
        ]

    real, estimated = _measure(make)
    assert estimated >= real * 0.9, (estimated, real)
    assert estimated <= real * 2.5, (estimated, real)


def test_the_estimate_covers_baggage_tracestate_and_status() -> None:
    """A span keeps its context (the client's tracestate and baggage) and its status text."""

    def make() -> list[span_mod.Span]:
        spans = []
        for i in range(200):
            span = make_span()
            entries = {
                f"key{j}-{i}": baggage.BaggageEntry("v" * 200 + str(i), f";p={i}")
                for j in range(30)
            }
            state = tuple((f"vendor{j}@t{i}", "s" * 200 + str(i)) for j in range(30))
            span.context = span.context._replace(
                trace_state=state, baggage=baggage.Baggage(entries)
            )
            span.status = span_mod.Status(span_mod.StatusCode.ERROR, "d" * 2000 + str(i))
            spans.append(span)
        return spans

    real, estimated = _measure(make)
    assert estimated >= real * 0.9, (estimated, real)
    assert estimated <= real * 2.5, (estimated, real)


def test_adding_after_a_quiet_spell_evicts_in_bounded_steps() -> None:
    """The memory reporter's batch arrives on the proxy's loop: the first batch after an
    hour without traffic must not evict the whole aged store in one go."""
    now = [1000.0]
    spans_store = store.SpanStore(max_spans=100_000, max_age_seconds=60, clock=lambda: now[0])
    spans_store.add([make_span() for _ in range(10_000)])
    now[0] += 3600
    spans_store.add([make_span()])
    assert 0 < spans_store.evicted <= store.STEP + 10
    batches = 1
    while len(spans_store) > batches:
        spans_store.add([make_span()])
        batches += 1
        assert batches < 10_000 // store.STEP + 5
    assert batches >= 10_000 // (store.STEP + 10)
    assert spans_store.evicted == 10_000


def test_adding_keeps_the_byte_and_span_bounds_exactly() -> None:
    """Bounded steps must not let a batch push the store past its bounds."""
    spans_store = store.SpanStore(max_spans=1_000_000, max_bytes=4 * 1024 * 1024)
    spans_store.add([make_span() for _ in range(20_000)])  # ~small spans up to the bound
    assert spans_store.bytes <= spans_store.max_bytes
    big = "b" * 4000
    for _ in range(5):  # each batch needs many small spans evicted to fit
        spans_store.add([make_span(tags={f"t{i}": big + str(i) for i in range(20)})] * 1)
        spans_store.add([make_span(tags={"u": big + str(i)}) for i in range(512)])
        assert spans_store.bytes <= spans_store.max_bytes
    counted = store.SpanStore(max_spans=1000)
    for _ in range(10):
        counted.add([make_span() for _ in range(700)])
        assert len(counted) <= 1000


async def test_a_smaller_bound_is_reached_in_steps_on_a_running_loop() -> None:
    spans_store = store.SpanStore(max_spans=100_000)
    spans_store.add([make_span() for _ in range(10_000)])
    spans_store.configure(max_spans=100, max_age_seconds=3600)
    assert len(spans_store) >= 10_000 - store.STEP  # not all in the admin request's turn
    turns = 0
    while len(spans_store) > 100:
        await asyncio.sleep(0)
        turns += 1
        assert turns < 100
    assert turns >= 10_000 // store.STEP - 2
    assert spans_store.evicted == 9_900


def test_a_smaller_bound_without_a_loop_applies_at_once() -> None:
    spans_store = store.SpanStore(max_spans=100_000)
    spans_store.add([make_span() for _ in range(10_000)])
    spans_store.configure(max_spans=100, max_age_seconds=3600)
    assert len(spans_store) == 100


async def test_searching_many_tags_yields_in_proportion() -> None:
    """Each span is compared with each tag asked for: the steps count comparisons."""
    tags: dict[str, span_mod.TagValue] = {f"k{i}": f"v{i}" for i in range(50)}
    spans_store = store.SpanStore()
    spans_store.add([make_span(service="svc", tags=tags) for _ in range(2_000)])
    wanted = (*((k, str(v)) for k, v in tags.items()), ("missing", "x"))
    query = store.TraceQuery(service="svc", tags=wanted, limit=10)
    found, turns = await loop_turns(spans_store.find_traces_async(query))
    assert found == []
    assert turns >= 2_000 * 50 // store.STEP - 2, turns


async def test_too_many_tags_are_400_naming_them() -> None:
    many = "&".join(f"tag=k{i}:v" for i in range(query_api.MAX_TAGS + 1))
    async with running_admin() as a:
        response = await a.get("/api/traces?service=s&" + many)
        assert response.status == 400
        assert "'tag'" in (await response.json())["errors"][0]["msg"]
        fine = "&".join(f"tag=k{i}:v" for i in range(query_api.MAX_TAGS))
        assert (await a.get("/api/traces?service=s&" + fine)).status == 200


async def test_a_long_span_kind_is_echoed_cut() -> None:
    async with running_admin() as a:
        response = await a.get("/api/operations?service=s&spanKind=" + "x" * 5000)
        text = await response.text()
        assert response.status == 400
        assert "'spanKind'" in text and len(text) < 1000, text[:200]


HOSTILE = [
    "9" * 400,
    "-1",
    "%ff",
    "%00",
    "%ed%a0%80",
    "1e400",
    "nan",
    "-inf",
    "x" * 3000,
    "+5",
    "0x10",
    "1h" * 40,
    ".s",
    '{"a":1e400}',
    "[" * 1000 + "]" * 1000,
]
PARAMETERS = [
    ("/api/traces?service=s", name)
    for name in (
        "service",
        "operation",
        "tags",
        "tag",
        "minDuration",
        "maxDuration",
        "limit",
        "start",
        "end",
        "lookback",
        "traceID",
    )
] + [
    ("/api/dependencies?", "endTs"),
    ("/api/dependencies?", "lookback"),
    ("/api/stats?", "service"),
    ("/api/stats?", "operation"),
    ("/api/stats?", "window"),
    ("/api/operations?service=s", "service"),
    ("/api/operations?service=s", "spanKind"),
]


@pytest.mark.parametrize(("base", "name"), PARAMETERS)
async def test_every_parameter_answers_hostile_values_without_a_500(base: str, name: str) -> None:
    async with running_admin() as a:
        a.store.add([make_span(service="s", tags={"a": "b"}) for _ in range(5)])
        for value in HOSTILE:
            response = await a.get(
                f"{base}&{name}={value}".replace("?&", "?"), allow_redirects=False
            )
            text = await response.text()
            assert response.status in (200, 400), (name, value[:40], response.status, text[:200])
            if response.status == 400:
                assert f"'{name}'" in text, (name, value[:40], text[:200])
                assert len(text) < 2_000


def test_answers_are_encoded_in_bounded_pieces_equal_to_one_dumps() -> None:
    """The query API sends trace answers piece by piece, yielding to the loop between
    pieces (one json.dumps of a 100 MB answer holds the GIL, thread or not)."""
    big = "t" * 3000
    traces = [
        [make_span(service="gw", tags={"big": big + str(i), "n": i, "ok": True, "r": 0.5})]
        for i in range(3)
    ]
    root = traces[0][0]
    traces[0] += [
        make_span(service=f"svc{i % 3}", parent=root, tags={"big": big}, error=i % 2 == 0)
        for i in range(300)
    ]
    traces.append([])
    pieces = list(jaeger_json.encode_traces(traces))
    whole = json.dumps(
        jaeger_json.envelope(jaeger_json.traces_json(traces), total=0), separators=(",", ":")
    )
    assert "".join(pieces) == whole
    assert len(pieces) >= len(whole) // (jaeger_json.CHUNK_CHARS + 4000)
    assert max(len(p) for p in pieces) <= jaeger_json.CHUNK_CHARS + 4000
    assert list(jaeger_json.encode_traces([])) == [
        json.dumps(jaeger_json.envelope([], total=0), separators=(",", ":"))
    ]


async def test_a_large_trace_arrives_whole_through_the_query_api() -> None:
    async with running_admin() as a:
        root = make_span(service="gw", name="GET /" + "😀" * 10)
        spans = [root] + [
            make_span(service="up", parent=root, tags={"big": "x" * 4000 + str(i)})
            for i in range(500)
        ]
        a.store.add(spans)
        tid = f"{root.trace_id:032x}"
        response = await a.get(f"/api/traces/{tid}")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
        assert len(body["data"][0]["spans"]) == 501
        names = {span["spanID"]: span["operationName"] for span in body["data"][0]["spans"]}
        assert names[f"{root.span_id:016x}"] == "GET /" + "😀" * 10
        searched = await (await a.get("/api/traces?service=up&limit=5")).json()
        assert [t["traceID"] for t in searched["data"]] == [tid]


async def test_stats_percentiles_are_computed_in_steps_and_exact() -> None:
    """100,000 durations: sorted in runs and merged stepwise, with the same nearest ranks
    as one sort."""
    spans_store = store.SpanStore(max_spans=200_000, clock=lambda: 1_700_000_100.0)
    durations = [((i * 7919) % 100_003) * 1_000 for i in range(30_000)]
    spans_store.add(
        [
            make_span(service="svc", duration_ns=d, error=i % 10 == 0)
            for i, d in enumerate(durations)
        ]
    )
    ordered = sorted(d / 1e6 for d in durations)
    result, turns = await loop_turns(spans_store.stats_async(service="svc", window_seconds=10**6))
    assert turns >= 2 * 30_000 // store.STEP - 2
    assert (result.count, result.errors) == (30_000, 3_000)
    assert result.p50_ms == store.percentile(ordered, 0.5)
    assert result.p90_ms == store.percentile(ordered, 0.9)
    assert result.p95_ms == store.percentile(ordered, 0.95)
    assert result.p99_ms == store.percentile(ordered, 0.99)
    assert result.max_ms == ordered[-1]
    assert spans_store.stats(service="svc", window_seconds=10**6) == result
    small = store.SpanStore()
    small.add([make_span(service="s", duration_ns=3_000_000)])
    assert small.stats(service="s", window_seconds=10**10).p99_ms == 3.0
    assert store.SpanStore().stats(service="s").count == 0


async def test_spans_a_full_trace_refuses_are_the_memory_reporters_drops_by_reason() -> None:
    spans_store = store.SpanStore(max_spans_per_trace=100, max_bytes=16 * 1024 * 1024)
    processor = memory.memory_processor(spans_store)
    processor.start()
    one = make_span()
    for _ in range(250):
        processor.on_end(make_span(trace_id=one.trace_id))
    huge = {f"t{i}": "h" * 4000 + str(i) for i in range(128)}  # ~0.5 MB a span
    for _ in range(3):
        processor.on_end(make_span(trace_id=one.trace_id + 1, tags=huge))
    assert await processor.force_flush(2)
    m = processor.metrics
    assert m.dropped_count("trace_spans") == 150
    assert m.dropped_count("trace_bytes") == 2  # a trace holds 1 MiB here: one such span
    assert m.exported.value(m.labels) == 100 + 1
    assert spans_store.dropped_by_reason == {"trace_spans": 150, "trace_bytes": 2}
    assert spans_store.dropped == 152
    await processor.shutdown(1)
    # a lone span larger than a trace may be is refused too (it would empty the store)
    lone = make_span(tags=huge)
    fields: dict[str, span_mod.TagValue] = {f"f{j}": "l" * 4000 + str(j) for j in range(32)}
    lone.logs.extend(span_mod.LogRecord(lone.start_ns, dict(fields)) for _ in range(8))
    small = store.SpanStore(max_bytes=1024 * 1024)
    assert small.add([lone]) == {"trace_bytes": 1} and len(small) == 0


async def test_a_client_leaving_mid_answer_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_admin() as a:
        root = make_span(service="gw")
        a.store.add(
            [root]
            + [
                make_span(service="up", parent=root, tags={"big": "x" * 4000 + str(i)})
                for i in range(3000)
            ]
        )
        server = a.client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            f"GET /api/traces/{root.trace_id:032x} HTTP/1.1\r\nHost: a\r\n"
            f"Authorization: {AUTH['Authorization']}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.read(4096), 10)
        assert head.startswith(b"HTTP/1.1 200 ")
        writer.transport.abort()  # gone, ~12 MB unread
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert (await a.get("/api/services")).status == 200
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_traces_by_id_are_gathered_in_steps_each_once() -> None:
    spans_store = store.SpanStore()
    roots = [make_span(service="gw") for _ in range(10)]
    for root in roots:
        spans_store.add([root] + [make_span(service="up", parent=root) for _ in range(999)])
    wanted = [root.trace_id for root in roots] + [12345]
    traces, turns = await loop_turns(spans_store.traces_async(wanted))
    assert turns >= min(10, 10_000 // store.STEP) - 1  # a trace is looked at in one go
    assert [len(t) for t in traces] == [1000] * 10 + [0]
    assert traces[3] == spans_store.trace(roots[3].trace_id)
    async with running_admin() as a:
        a.store.add(spans_store.trace(roots[0].trace_id))
        tid = f"{roots[0].trace_id:032x}"
        body = await (await a.get(f"/api/traces?traceID={tid}&traceID={tid.upper()}")).json()
        assert [t["traceID"] for t in body["data"]] == [tid]
