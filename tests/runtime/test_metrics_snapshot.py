"""Several processes' metrics as one: counters and histograms summed, gauges summed
unless the first snapshot owns them, conflicts named, rendering unchanged."""

from gatetrace.runtime import metrics, metrics_snapshot


def _process(requests: int, latencies: list[float], open_connections: int) -> metrics.Registry:
    registry = metrics.Registry()
    counter = registry.counter("reqs", "Requests", ["code"])
    counter.inc(("200",), requests)
    counter.tally(("500",)).n += 1
    histogram = registry.histogram("lat", "Latency", ["route"], buckets=(0.1, 1.0))
    for value in latencies:
        histogram.observe(value, ("r",))
    registry.gauge("open", "Open connections").set_function(lambda: float(open_connections))
    registry.gauge("revision", "Running revision").set(4)
    return registry


def test_counters_histograms_and_gauges_are_summed_owned_gauges_are_not() -> None:
    first = metrics_snapshot.snapshot([_process(3, [0.05, 2.0], 5)])
    second = metrics_snapshot.snapshot([_process(4, [0.5], 7)])
    merged = metrics_snapshot.merge([first, second], owned={"revision"})
    assert merged.conflicts == []
    text = metrics.render_prometheus([merged.registry])
    assert 'reqs_total{code="200"} 7' in text
    assert 'reqs_total{code="500"} 2' in text
    assert 'lat_bucket{route="r",le="0.1"} 1' in text
    assert 'lat_bucket{route="r",le="1.0"} 2' in text
    assert 'lat_bucket{route="r",le="+Inf"} 3' in text
    assert 'lat_count{route="r"} 3' in text
    assert 'lat_sum{route="r"} 2.55' in text
    assert "open 12" in text
    assert "revision 4" in text  # the first snapshot's, not 8
    assert "# TYPE reqs_total counter" in text


def test_a_metric_of_another_shape_is_a_named_conflict_not_a_crash() -> None:
    first = metrics_snapshot.snapshot([_process(1, [0.2], 1)])
    other = metrics.Registry()
    other.histogram("lat", "Latency", ["route"], buckets=(0.5,)).observe(0.2, ("r",))
    other.gauge("reqs", "now a gauge", ["code"]).set(1, ("200",))
    merged = metrics_snapshot.merge([first, metrics_snapshot.snapshot([other])])
    assert len(merged.conflicts) == 2
    assert any(c.startswith("lat: buckets") for c in merged.conflicts)
    assert any(c.startswith("reqs:") for c in merged.conflicts)
    text = metrics.render_prometheus([merged.registry])
    assert 'reqs_total{code="200"} 1' in text
