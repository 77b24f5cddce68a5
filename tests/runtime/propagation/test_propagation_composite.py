"""The composite: configured extract order and inject set, registry, failure metrics."""

import re
from typing import Any

import pytest
from proptools import SPAN_ID, TRACE_ID, context, counter, counts, extract, inject

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import metrics
from gatetrace.runtime.propagation import base, composite, failures

TP = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
B3 = f"{'1' * 32}-{'2' * 16}-0"
UBER = f"{'3' * 32}:{'4' * 16}:0:1"


def test_registry_names_every_format() -> None:
    assert list(composite.FORMATS) == [
        "tracecontext",
        "baggage",
        "b3",
        "b3multi",
        "jaeger",
        "xtrace",
    ]
    for name, factory in composite.FORMATS.items():
        propagator = factory(base.IGNORE_FAILURES, base.DEFAULT_BAGGAGE_LIMITS)
        assert propagator.name == name
        assert propagator.fields and all(f == f.lower() for f in propagator.fields)


def test_unknown_format_is_named() -> None:
    with pytest.raises(ValueError, match=r"propagation\.inject: unknown format 'w3c'"):
        composite.build_propagator(["tracecontext"], ["w3c"], None)
    with pytest.raises(ValueError, match="'zipkin'"):
        composite.build_propagator(["zipkin"], [], None)
    with pytest.raises(TypeError, match="list of format names"):
        composite.build_propagator("b3", [], None)


def test_first_context_in_extract_order_wins() -> None:
    carrier = {"traceparent": TP, "b3": B3, "uber-trace-id": UBER}
    found = extract(composite.build_propagator(["b3", "tracecontext", "jaeger"], [], None), carrier)
    assert found.format == "b3" and found.context is not None
    assert found.context.trace_id == int("1" * 32, 16) and found.context.sampled is False
    found = extract(composite.build_propagator(["jaeger", "b3"], [], None), carrier)
    assert found.format == "jaeger"


def test_invalid_first_format_falls_through_and_is_counted() -> None:
    failures = counter()
    carrier = {"traceparent": "ff" + TP[2:], "b3": B3}
    found = extract(composite.build_propagator(["tracecontext", "b3"], [], failures), carrier)
    assert found.format == "b3"
    assert counts(failures) == {("tracecontext", "version"): 1}


def test_formats_not_listed_are_not_read() -> None:
    found = extract(composite.build_propagator(["tracecontext"], [], None), {"b3": B3})
    assert found.context is None


def test_baggage_merged_from_all_formats_and_attached_to_the_context() -> None:
    carrier = {
        "traceparent": TP,
        "baggage": "tenant=w3c,only-w3c=1",
        "uberctx-tenant": "jaeger",
        "uberctx-only-jaeger": "2",
    }
    found = extract(
        composite.build_propagator(["tracecontext", "baggage", "jaeger"], [], None), carrier
    )
    expected = {"tenant": "w3c", "only-w3c": "1", "only-jaeger": "2"}
    assert dict(found.baggage) == expected
    assert found.context is not None and dict(found.context.baggage) == expected


def test_jaeger_debug_container_yields_to_a_later_real_context() -> None:
    carrier = {"jaeger-debug-id": "dbg-1", "traceparent": TP}
    found = extract(composite.build_propagator(["jaeger", "tracecontext"], [], None), carrier)
    assert found.context is not None and found.context.trace_id == TRACE_ID
    assert found.context.debug and found.context.debug_id == "dbg-1"
    assert found.format == "tracecontext"


def test_inject_writes_every_inject_format() -> None:
    propagator = composite.build_propagator(
        ["tracecontext"], ["tracecontext", "b3", "baggage", "b3"], None
    )
    bag = _baggage.Baggage.from_values({"k": "v"})
    carrier = inject(propagator, context(sampled=False, baggage=bag))
    assert carrier == {
        "traceparent": TP[:-2] + "00",
        "b3": f"{TRACE_ID:032x}-{SPAN_ID:016x}-0",
        "baggage": "k=v",
    }
    assert propagator.fields >= {"traceparent", "tracestate", "b3", "baggage"}
    # without baggage the W3C baggage format is skipped; the others keep their order
    carrier = inject(propagator, context(sampled=False))
    assert list(carrier) == ["traceparent", "b3"]


class _Exploding:
    name = "exploding"
    fields = frozenset({"x-boom"})

    def extract(self, carrier: Any, getter: base.Getter, found: base.Extracted) -> base.Extracted:
        raise RuntimeError("bug")

    def inject(self, context: Any, carrier: Any, setter: base.Setter) -> None:
        raise RuntimeError("bug")


def test_a_raising_format_is_counted_and_skipped() -> None:
    failures = counter()
    tracecontext = composite.FORMATS["tracecontext"](failures, base.DEFAULT_BAGGAGE_LIMITS)
    propagator = composite.CompositePropagator(
        [_Exploding(), tracecontext], [_Exploding(), tracecontext], failures
    )
    found = extract(propagator, {"traceparent": TP})
    assert found.context is not None
    assert inject(propagator, found.context) == {"traceparent": TP}
    assert counts(failures) == {("exploding", "internal_error"): 2}


def test_failures_are_rendered_as_a_prometheus_counter() -> None:
    registry = metrics.Registry()
    propagator = composite.build_propagator(
        ["tracecontext", "b3"], [], failures.MetricsFailureCounter(registry)
    )
    extract(propagator, {"traceparent": "garbage", "b3": "nope"})
    text = metrics.render_prometheus([registry])
    assert re.search(r"^# TYPE gatetrace_propagation_failures(_total)? counter$", text, re.M)
    assert 'gatetrace_propagation_failures_total{format="tracecontext",reason="format"} 1' in text
    assert 'gatetrace_propagation_failures_total{format="b3",reason="sampled"} 1' in text


def test_default_found_is_empty() -> None:
    propagator = composite.build_propagator(["tracecontext"], [], None)
    assert propagator.extract({}, base.DictGetter()) == base.EMPTY


def test_baggage_limits_reach_every_baggage_format() -> None:
    limits = base.BaggageLimits(max_entries=1, max_bytes=100)
    propagator = composite.build_propagator(
        ["baggage", "jaeger", "xtrace"],
        ["baggage", "jaeger", "xtrace"],
        None,
        baggage_limits=limits,
    )
    bag = _baggage.Baggage.from_values({"a": "1", "b": "2"})
    carrier = inject(propagator, context(baggage=bag))
    assert carrier["baggage"] == "a=1"
    assert carrier["uberctx-a"] == "1" and "uberctx-b" not in carrier
    assert carrier["X-Baggage-a"] == "1" and "X-Baggage-b" not in carrier
    found = extract(propagator, {"baggage": "a=1,b=2", "uberctx-c": "3", "x-baggage-d": "4"})
    assert dict(found.baggage) == {"a": "1", "c": "3", "d": "4"}


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        composite.FORMATS["mine"] = composite.FORMATS["b3"]  # type: ignore[index]
