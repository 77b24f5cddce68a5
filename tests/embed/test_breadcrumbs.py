"""Breadcrumbs: parsing, merging and bounds; the pending mark in every format."""

import pytest

from gatetrace.embed import breadcrumbs, pending
from gatetrace.runtime import spancontext
from gatetrace.runtime.propagation import base, composite


def test_parse_keeps_ip_addresses_in_order_without_repeats_within_the_limit() -> None:
    found, refused = breadcrumbs.parse(
        ["http://10.0.0.1:9901, http://[::1]:80", "http://10.0.0.1:9901,http://10.0.0.2:1"], 2
    )
    assert found == ["http://10.0.0.1:9901", "http://[::1]:80"]
    assert refused == 1  # the third distinct one is past the limit


@pytest.mark.parametrize(
    "bad",
    [
        "https://10.0.0.1:9901",
        "http://example.com:80",
        "http://10.0.0.1",
        "http://10.0.0.1:0",
        "http://10.0.0.1:65536",
        "http://::1:80",
        "http://[10.0.0.1]:80",
        "http://10.0.0.1:80/path",
        "http://user@10.0.0.1:80",
        "http://10.0.0.1:\uff18\uff10",
        "http://" + "1" * 80,
    ],
)
def test_parse_refuses_anything_but_http_ip_port(bad: str) -> None:
    assert breadcrumbs.parse([bad], 16) == ([], 1)


def test_a_huge_header_is_refused_whole() -> None:
    assert breadcrumbs.parse(["http://10.0.0.1:1," * 1000], 16) == ([], 1)


def test_merge_puts_the_own_address_first_and_bounds_the_list() -> None:
    merged = breadcrumbs.merge(
        ["http://10.0.0.9:1"], ["http://10.0.0.1:1", "http://10.0.0.9:1", "http://10.0.0.2:1"], 2
    )
    assert merged == ["http://10.0.0.9:1", "http://10.0.0.1:1"]


def _context(sampled: bool | None, state: spancontext.TraceState = ()) -> spancontext.SpanContext:
    return spancontext.SpanContext(0xAB, 0xCD, sampled, trace_state=state)


def test_the_mark_goes_first_and_keeps_the_other_members() -> None:
    marked = pending.marked(_context(True, (("vendor", "1"), ("gt", "x"))))
    assert marked.trace_state == (("gt", "p"), ("vendor", "1"))
    assert marked.sampled is False and pending.is_pending(marked)
    assert pending.unmarked(marked).trace_state == (("vendor", "1"),)
    assert not pending.is_pending(_context(True, (("gt", "p"),)))  # sampled: not pending


@pytest.mark.parametrize("fmt", [f for f in composite.FORMATS if f != "baggage"])
def test_the_mark_travels_in_every_format_that_carries_tracestate(fmt: str) -> None:
    propagator = composite.build_propagator([fmt], [fmt])
    carrier: dict[str, str] = {}
    propagator.inject(pending.marked(_context(False)), carrier, base.DictSetter())
    found = propagator.extract(carrier, base.DictGetter()).context
    assert found is not None and found.sampled is False  # every format: not sampled
    assert pending.is_pending(found) == (fmt == "tracecontext")  # only W3C has tracestate


def test_the_mark_rides_along_when_another_format_wins_extraction() -> None:
    writer = composite.build_propagator(["b3", "tracecontext"], ["b3", "tracecontext"])
    carrier: dict[str, str] = {}
    writer.inject(pending.marked(_context(False)), carrier, base.DictSetter())
    found = writer.extract(carrier, base.DictGetter())
    assert found.format == "b3" and found.context is not None
    assert pending.is_pending(found.context)
