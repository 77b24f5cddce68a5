"""Metrics: counters, gauges, histograms, and the Prometheus text format read back
by prometheus_client's own parser."""

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gatetrace.runtime import metrics


def _parse(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """family name -> {(sample name, sorted labels): value}"""
    families: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        # an "unknown" family means HELP/TYPE did not name the samples they describe
        assert family.type in {"counter", "gauge", "histogram"}, family
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families


def test_counters_with_labels_render_and_parse_back() -> None:
    registry = metrics.Registry()
    counter = registry.counter("gatetrace_things", "Things seen", ["kind", "outcome"])
    counter.inc(("a", "ok"))
    counter.inc(("a", "ok"), 2)
    counter.inc(("b", "failed"))
    plain = registry.counter("gatetrace_plain", "No labels")
    plain.inc()
    text = metrics.render_prometheus([registry])
    assert "# TYPE gatetrace_things_total counter" in text
    parsed = _parse(text)
    assert parsed["gatetrace_things"] == {
        ("gatetrace_things_total", (("kind", "a"), ("outcome", "ok"))): 3,
        ("gatetrace_things_total", (("kind", "b"), ("outcome", "failed"))): 1,
    }
    assert parsed["gatetrace_plain"] == {("gatetrace_plain_total", ()): 1}
    assert counter.value(("a", "ok")) == 3
    assert counter.total() == 4


def test_gauges_with_values_and_functions() -> None:
    registry = metrics.Registry()
    gauge = registry.gauge("gatetrace_queue_depth", "Queued spans", ["reporter"])
    gauge.set(4, ("zipkin",))
    gauge.inc(("zipkin",), -1)
    depth = [7]
    gauge.set_function(lambda: depth[0], ("jaeger",))
    depth[0] = 9
    assert gauge.value(("jaeger",)) == 9
    parsed = _parse(metrics.render_prometheus([registry]))
    assert parsed["gatetrace_queue_depth"] == {
        ("gatetrace_queue_depth", (("reporter", "zipkin"),)): 3,
        ("gatetrace_queue_depth", (("reporter", "jaeger"),)): 9,
    }


def test_histograms_have_cumulative_buckets_sum_and_count() -> None:
    registry = metrics.Registry()
    histogram = registry.histogram(
        "gatetrace_export_seconds", "Export latency", ["reporter"], buckets=[0.5, 0.1, 1.0]
    )
    for value in (0.05, 0.1, 0.3, 2.0):
        histogram.observe(value, ("otlp",))
    assert histogram.buckets == (0.1, 0.5, 1.0)
    assert histogram.count(("otlp",)) == 4
    parsed = _parse(metrics.render_prometheus([registry]))["gatetrace_export_seconds"]
    label = ("reporter", "otlp")
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in parsed.items()
        if name == "gatetrace_export_seconds_bucket"
    }
    assert buckets == {"0.1": 2, "0.5": 3, "1.0": 3, "+Inf": 4}
    assert parsed[("gatetrace_export_seconds_count", (label,))] == 4
    assert parsed[("gatetrace_export_seconds_sum", (label,))] == pytest.approx(2.45)


def test_label_values_and_help_are_escaped() -> None:
    registry = metrics.Registry()
    counter = registry.counter("gatetrace_odd", 'Help with \\ and\nnewline "quotes"', ["v"])
    nasty = 'a"b\\c\nd'
    counter.inc((nasty,))
    text = metrics.render_prometheus([registry])
    assert "\nd" not in text.split("# TYPE")[1].split("\n", 1)[1].split("}")[0]
    (family,) = text_string_to_metric_families(text)
    assert family.documentation == 'Help with \\ and\nnewline "quotes"'
    assert family.samples[0].labels == {"v": nasty}


def test_special_float_values() -> None:
    registry = metrics.Registry()
    gauge = registry.gauge("gatetrace_special", "Special values", ["case"])
    gauge.set(math.inf, ("inf",))
    gauge.set(-math.inf, ("neg",))
    gauge.set(math.nan, ("nan",))
    gauge.set(0.25, ("frac",))
    gauge.set(1e20, ("big",))
    parsed = _parse(metrics.render_prometheus([registry]))["gatetrace_special"]
    values = {dict(labels)["case"]: value for (_, labels), value in parsed.items()}
    assert values["inf"] == math.inf
    assert values["neg"] == -math.inf
    assert math.isnan(values["nan"])
    assert (values["frac"], values["big"]) == (0.25, 1e20)


def test_registries_render_together_each_name_once() -> None:
    first, second = metrics.Registry(), metrics.Registry()
    first.counter("gatetrace_a", "A").inc()
    second.counter("gatetrace_a", "A again").inc(amount=5)
    second.counter("gatetrace_b", "B").inc()
    text = metrics.render_prometheus([first, second])
    assert text.count("# TYPE gatetrace_a_total counter") == 1
    parsed = _parse(text)
    assert parsed["gatetrace_a"] == {("gatetrace_a_total", ()): 1}
    assert set(parsed) == {"gatetrace_a", "gatetrace_b"}
    assert text.endswith("\n")


def test_registering_twice_returns_the_same_metric_or_refuses_a_mismatch() -> None:
    registry = metrics.Registry()
    counter = registry.counter("gatetrace_x", "X", ["a"])
    assert registry.counter("gatetrace_x", "X", ["a"]) is counter
    with pytest.raises(ValueError, match="gatetrace_x"):
        registry.counter("gatetrace_x", "X", ["b"])
    with pytest.raises(ValueError, match="gatetrace_x"):
        registry.gauge("gatetrace_x", "X", ["a"])


def test_wrong_label_count_is_refused_at_render_time() -> None:
    registry = metrics.Registry()
    registry.counter("gatetrace_y", "Y", ["a", "b"]).inc(("only-one",))
    # zip(strict=True): a programming error, not silently mislabelled samples
    with pytest.raises(ValueError, match=r"shorter|longer"):
        metrics.render_prometheus([registry])


def test_empty_registry_renders_just_a_newline() -> None:
    assert metrics.render_prometheus([metrics.Registry()]) == "\n"


def test_a_tally_counts_in_every_series_it_is_attached_to() -> None:
    registry = metrics.Registry()
    started = registry.counter("gatetrace_started", "Started", ["recording"])
    finished = registry.counter("gatetrace_finished", "Finished", ["outcome"])
    tally = started.tally(("false",))
    assert started.tally(("false",)) is tally  # shared by everyone using this counter
    finished.attach(tally, ("not_sampled",))
    finished.attach(tally, ("not_sampled",))  # once per tally: no double counting
    started.inc(("false",))
    started.inc(("true",), 2)
    tally.n += 5
    assert started.value(("false",)) == 6
    assert started.total() == 8
    assert finished.value(("not_sampled",)) == 5
    assert dict(finished.items()) == {("not_sampled",): 5}
    parsed = _parse(metrics.render_prometheus([registry]))
    assert parsed["gatetrace_started"] == {
        ("gatetrace_started_total", (("recording", "false"),)): 6,
        ("gatetrace_started_total", (("recording", "true"),)): 2,
    }
    assert parsed["gatetrace_finished"] == {
        ("gatetrace_finished_total", (("outcome", "not_sampled"),)): 5
    }
    with pytest.raises(ValueError, match=r"gatetrace_finished: 2 label values"):
        finished.attach(metrics.Tally(), ("a", "b"))


def test_a_counter_may_read_its_total_from_a_function() -> None:
    registry = metrics.Registry()
    counter = registry.counter("gatetrace_read", "Read at collection", ["kind"])
    total = [2.5]
    counter.set_function(lambda: total[0], ("cpu",))
    counter.inc(("other",))
    total[0] = 4.0
    assert counter.value(("cpu",)) == 4.0
    parsed = _parse(metrics.render_prometheus([registry]))
    assert parsed["gatetrace_read"] == {
        ("gatetrace_read_total", (("kind", "cpu"),)): 4.0,
        ("gatetrace_read_total", (("kind", "other"),)): 1,
    }
    with pytest.raises(ValueError, match="gatetrace_read: 0 label values"):
        counter.set_function(lambda: 1.0)


@pytest.mark.parametrize(
    ("longest", "tail"),
    [
        (32.0, (5.0, 10.0, 25.0, 32.0)),
        (0.3, (0.1, 0.25, 0.3)),
        (5.0, (2.5, 5.0)),
        (600.0, (100.0, 250.0, 500.0, 600.0)),
    ],
)
def test_latency_buckets_extend_the_defaults_up_to_the_longest(
    longest: float, tail: tuple[float, ...]
) -> None:
    buckets = metrics.latency_buckets(longest)
    assert buckets[-len(tail) :] == tail
    assert buckets == tuple(sorted(set(buckets)))
    assert buckets[0] == metrics.DEFAULT_BUCKETS[0]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_latency_buckets_refuse_a_bound_that_is_no_duration(bad: float) -> None:
    with pytest.raises(ValueError, match="longest_seconds"):
        metrics.latency_buckets(bad)
