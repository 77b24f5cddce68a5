"""SpanStore: bounds (count, age), indexes, search, dependencies and stats."""

import pytest
from gt_spans import make_span

from gatetrace.gateway import store
from gatetrace.runtime import span

T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0 / 1e9

    def __call__(self) -> float:
        return self.now


def test_trace_lookup_returns_spans_by_start_time() -> None:
    s = store.SpanStore()
    root = make_span(start_ns=T0)
    child = make_span(parent=root, start_ns=T0 + 10, service="users", kind=span.SpanKind.CLIENT)
    s.add([child, root])
    assert s.trace(root.trace_id) == [root, child]
    assert s.trace(12345) == []
    assert len(s) == 2


def test_unfinished_spans_are_ignored() -> None:
    s = store.SpanStore()
    root = make_span()
    root.end_ns = None
    s.add([root])
    assert len(s) == 0


def test_count_bound_evicts_oldest_and_cleans_indexes() -> None:
    s = store.SpanStore(max_spans=3)
    spans = [make_span(service=f"svc{i}", name=f"op{i}") for i in range(5)]
    s.add(spans)
    assert len(s) == 3
    assert s.evicted == 2
    assert s.services() == ["svc2", "svc3", "svc4"]
    assert s.trace(spans[0].trace_id) == []
    assert s.operations("svc0") == []
    assert s.find_traces(store.TraceQuery(service="svc0", operation="op0")) == []
    assert len(s.find_traces(store.TraceQuery(service="svc4", operation="op4"))) == 1
    assert s._by_operation.keys() == {("svc2", "op2"), ("svc3", "op3"), ("svc4", "op4")}


def test_age_bound_evicts_on_read() -> None:
    clock = Clock()
    s = store.SpanStore(max_age_seconds=60, clock=clock)
    old = make_span(service="old")
    s.add([old])
    clock.now += 30
    s.add([make_span(service="new")])
    clock.now += 31
    assert s.services() == ["new"]
    assert s.trace(old.trace_id) == []


def test_configure_shrinks_at_once() -> None:
    s = store.SpanStore()
    s.add([make_span() for _ in range(10)])
    s.configure(max_spans=4, max_age_seconds=10)
    assert len(s) == 4
    with pytest.raises(ValueError, match="max_spans"):
        s.configure(max_spans=0, max_age_seconds=1)


def test_bad_bounds_rejected() -> None:
    with pytest.raises(ValueError, match="max_spans"):
        store.SpanStore(max_spans=0)
    with pytest.raises(ValueError, match="max_age_seconds"):
        store.SpanStore(max_age_seconds=0)


def test_operations_by_service_and_kind() -> None:
    s = store.SpanStore()
    root = make_span(name="GET /a", kind=span.SpanKind.SERVER)
    s.add([root, make_span(parent=root, name="GET", kind=span.SpanKind.CLIENT)])
    s.add([make_span(name="GET /b"), make_span(service="other", name="x")])
    assert s.operations("gw") == [
        ("GET", span.SpanKind.CLIENT),
        ("GET /a", span.SpanKind.SERVER),
        ("GET /b", span.SpanKind.SERVER),
    ]
    assert s.operations("gw", span.SpanKind.CLIENT) == [("GET", span.SpanKind.CLIENT)]
    assert s.operations("nope") == []


def test_find_traces_filters() -> None:
    s = store.SpanStore()
    slow = make_span(name="GET /slow", duration_ns=500_000_000, tags={"http.status": 200})
    fast = make_span(name="GET /fast", start_ns=T0 + 1000, duration_ns=1_000_000)
    failed = make_span(name="GET /fast", start_ns=T0 + 2000, error=True)
    other = make_span(service="users", name="GET /fast", start_ns=T0 + 3000)
    s.add([slow, fast, failed, other])

    def ids(q: store.TraceQuery) -> list[int]:
        return [t[0].trace_id for t in s.find_traces(q)]

    assert ids(store.TraceQuery(service="gw")) == [
        failed.trace_id,
        fast.trace_id,
        slow.trace_id,
    ]
    assert ids(store.TraceQuery(service="gw", operation="GET /slow")) == [slow.trace_id]
    assert ids(store.TraceQuery(service="gw", min_duration_ns=100_000_000)) == [slow.trace_id]
    assert ids(store.TraceQuery(service="gw", max_duration_ns=2_000_000)) == [
        failed.trace_id,
        fast.trace_id,
    ]
    assert ids(store.TraceQuery(service="gw", tags=(("error", "true"),))) == [failed.trace_id]
    assert ids(store.TraceQuery(service="gw", tags=(("http.status", "200"),))) == [slow.trace_id]
    assert ids(store.TraceQuery(service="gw", limit=1)) == [failed.trace_id]
    assert ids(store.TraceQuery(service="gw", start_ns=T0 + 1500)) == [failed.trace_id]
    assert ids(store.TraceQuery(service="gw", end_ns=T0 + 500)) == [slow.trace_id]
    assert ids(store.TraceQuery()) == [
        other.trace_id,
        failed.trace_id,
        fast.trace_id,
        slow.trace_id,
    ]
    assert ids(store.TraceQuery(service="gw", limit=0)) == []


def test_dependencies_count_every_parent_child_pair_of_traces_inside_the_window() -> None:
    # Jaeger's rules (e2e/test_query_vs_jaeger.py checks them against the real one): a
    # pair within one service counts too (a service calling itself through the gateway),
    # and a trace counts only when it lies wholly inside [endTs - lookback, endTs].
    s = store.SpanStore()
    root = make_span(service="gw", start_ns=T0)
    client = make_span(service="gw", parent=root, start_ns=T0 + 10, kind=span.SpanKind.CLIENT)
    users = make_span(service="users", parent=client, start_ns=T0 + 20)
    db = make_span(service="db", parent=users, start_ns=T0 + 30)
    late_root = make_span(service="gw", start_ns=T0)
    late = make_span(service="users", parent=late_root, start_ns=T0 + 10_000_000_000)
    s.add([root, client, users, db, late_root, late])
    deps = s.dependencies(end_ns=T0 + 2_000_000, lookback_ns=2_000_000)
    assert deps == [
        store.Dependency("gw", "gw", 1),
        store.Dependency("gw", "users", 1),
        store.Dependency("users", "db", 1),
    ]
    everything = s.dependencies(end_ns=T0 + 20_000_000_000, lookback_ns=20_000_000_000)
    assert store.Dependency("gw", "users", 2) in everything
    # the late trace's child alone inside the window: the trace is not wholly in it
    tail = s.dependencies(end_ns=T0 + 20_000_000_000, lookback_ns=15_000_000_000)
    assert tail == []
    # nor is a trace that ends after the window (its spans all started inside it)
    assert s.dependencies(end_ns=T0 + 1_000_000, lookback_ns=1_000_000) == []


def test_stats_percentiles_and_errors_in_window() -> None:
    clock = Clock()
    s = store.SpanStore(clock=clock)
    clock.now = (T0 + 200_000_000_000) / 1e9
    spans = [
        make_span(name="op", start_ns=T0 + 100_000_000_000, duration_ns=(i + 1) * 1_000_000)
        for i in range(100)
    ]
    spans[0].status = span.Status(span.StatusCode.ERROR)
    s.add(spans)
    s.add([make_span(name="op", start_ns=T0, duration_ns=9_000_000_000)])  # outside the window
    st = s.stats(service="gw", operation="op", window_seconds=150)
    assert (st.count, st.errors) == (100, 1)
    assert (st.p50_ms, st.p90_ms, st.p95_ms, st.p99_ms, st.max_ms) == (50, 90, 95, 99, 100)
    assert st.to_json()["p99"] == 99
    empty = s.stats(service="nope")
    assert (empty.count, empty.max_ms, empty.p50_ms) == (0, 0.0, 0.0)
    assert s.stats(window_seconds=1000).count == 101


def test_percentile_nearest_rank() -> None:
    assert store.percentile([], 0.5) == 0.0
    assert store.percentile([1.0], 0.99) == 1.0
    assert store.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert store.percentile([1.0, 2.0, 3.0, 4.0], 0.0) == 1.0
