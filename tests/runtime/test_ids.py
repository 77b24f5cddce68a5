"""Ids: random, never zero, lowercase zero-padded hex, strict parsing."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatetrace.runtime import ids


def test_new_ids_are_in_range_non_zero_and_distinct() -> None:
    trace_ids = [ids.new_trace_id() for _ in range(5000)]
    span_ids = [ids.new_span_id() for _ in range(5000)]
    assert all(0 < t < 2**128 for t in trace_ids)
    assert all(0 < s < 2**64 for s in span_ids)
    assert len(set(trace_ids)) == len(trace_ids)
    assert len(set(span_ids)) == len(span_ids)
    # the high bits are used too (not 64-bit ids padded to 128)
    assert any(t >> 64 for t in trace_ids)


def test_a_zero_draw_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0, 0, 5])
    monkeypatch.setattr(ids, "_getrandbits", lambda bits: next(draws))
    assert ids.new_trace_id() == 5
    draws = iter([0, 9])
    assert ids.new_span_id() == 9


def test_formatting_is_lowercase_and_zero_padded() -> None:
    assert ids.format_trace_id(1) == "0" * 31 + "1"
    assert ids.format_span_id(0xABC) == "0000000000000abc"
    assert ids.format_trace_id(2**128 - 1) == "f" * 32
    for _ in range(200):
        assert re.fullmatch(r"[0-9a-f]{32}", ids.format_trace_id(ids.new_trace_id()))
        assert re.fullmatch(r"[0-9a-f]{16}", ids.format_span_id(ids.new_span_id()))


@given(st.integers(min_value=1, max_value=2**128 - 1))
def test_trace_ids_round_trip(value: int) -> None:
    assert ids.parse_trace_id(ids.format_trace_id(value)) == value


@given(st.integers(min_value=1, max_value=2**64 - 1))
def test_span_ids_round_trip(value: int) -> None:
    assert ids.parse_span_id(ids.format_span_id(value)) == value


def test_short_ids_are_accepted_as_in_b3_and_jaeger() -> None:
    assert ids.parse_trace_id("463ac35c9f6413ad") == 0x463AC35C9F6413AD
    assert ids.parse_trace_id("ABC") == 0xABC
    assert ids.parse_span_id("1") == 1


@pytest.mark.parametrize(
    "text",
    ["", "0", "0" * 32, "g" * 32, "1" * 33, " 1", "1 ", "0x1", "+1", "-1", "1_0", "\u0661"],
)
def test_bad_or_zero_trace_ids_are_none(text: str) -> None:
    assert ids.parse_trace_id(text) is None


@pytest.mark.parametrize("text", ["", "0" * 16, "1" * 17, "xyz", "+f", "f\n"])
def test_bad_or_zero_span_ids_are_none(text: str) -> None:
    assert ids.parse_span_id(text) is None


@given(st.text(max_size=40))
def test_parsing_never_raises(text: str) -> None:
    for parse in (ids.parse_trace_id, ids.parse_span_id):
        value = parse(text)
        assert value is None or value > 0
