"""The propagation interface helpers: getters, setters, adopt and the cheap tuple builders."""

import multidict
from hypothesis import given
from proptools import contexts

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import metrics
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base, failures


def test_dict_getter_is_case_insensitive_and_keeps_order() -> None:
    getter = base.DictGetter()
    carrier = {"TraceState": "a=1", "tracestate-x": "no", "TRACESTATE": "b=2"}
    assert list(getter.get(carrier, "tracestate")) == ["a=1", "b=2"]
    assert list(getter.get({"tracestate": "c=3"}, "TraceState")) == ["c=3"]
    assert list(getter.get(carrier, "missing")) == []
    assert list(getter.keys(carrier)) == list(carrier)


def test_multidict_getter_reads_every_value() -> None:
    headers = multidict.CIMultiDictProxy(
        multidict.CIMultiDict([("Baggage", "a=1"), ("x", "y"), ("baggage", "b=2")])
    )
    getter = base.MultiDictGetter()
    assert list(getter.get(headers, "BAGGAGE")) == ["a=1", "b=2"]
    assert list(getter.get(headers, "missing")) == []


def test_dict_setter() -> None:
    carrier: dict[str, str] = {}
    base.DictSetter().set(carrier, "b3", "0")
    assert carrier == {"b3": "0"}


@given(contexts())
def test_cheap_builders_equal_replace(ctx: _sc.SpanContext) -> None:
    bag = _baggage.Baggage.from_values({"k": "v"})
    built = base.context_with_baggage(ctx, bag)
    assert type(built) is _sc.SpanContext and built == ctx._replace(baggage=bag)
    found = base.Extracted(ctx, _baggage.EMPTY_BAGGAGE, "b3", None, False)
    again = base.with_baggage(found, bag)
    assert type(again) is base.Extracted and again == found._replace(baggage=bag)


def test_adopt() -> None:
    ctx = _sc.SpanContext(1, 2, True, remote=True)
    found = base.adopt(base.EMPTY, ctx, "b3")
    assert found == base.Extracted(ctx, format="b3")
    assert base.adopt(found, _sc.SpanContext(3, 4), "jaeger") is found
    container = base.Extracted(_sc.SpanContext(0, 0, True, True, debug_id="d"), sampled=True)
    merged = base.adopt(container, ctx, "tracecontext")
    assert merged.context == ctx._replace(debug=True, debug_id="d")
    assert merged.format == "tracecontext" and merged.sampled is True


def test_ignore_failures_and_metrics_counter() -> None:
    base.IGNORE_FAILURES.failed("b3", "format")  # counts nothing, raises nothing
    counter = failures.MetricsFailureCounter(metrics.Registry())
    counter.failed("b3", "format")
    counter.failed("b3", "format")
    assert counter.count("b3", "format") == 2
    assert counter.count("b3", "other") == 0
