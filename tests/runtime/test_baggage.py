"""Baggage: an immutable ordered mapping with metadata."""

import pytest

from gatetrace.runtime import baggage


def test_mapping_behaviour_and_order() -> None:
    bag = baggage.Baggage.from_values({"b": "2", "a": "1"})
    assert list(bag) == ["b", "a"]
    assert (bag["a"], len(bag), "b" in bag, bag.get("zz")) == ("1", 2, True, None)
    assert dict(bag) == {"b": "2", "a": "1"}
    with pytest.raises(KeyError):
        bag["missing"]


def test_empty_baggage_is_falsy_and_shared() -> None:
    assert not baggage.EMPTY_BAGGAGE
    assert len(baggage.Baggage()) == 0
    assert baggage.Baggage() == baggage.EMPTY_BAGGAGE


def test_with_entry_returns_a_copy_and_keeps_positions() -> None:
    bag = baggage.Baggage.from_values({"a": "1", "b": "2"})
    changed = bag.with_entry("a", "9", "prop=1")
    assert list(changed.entries()) == [
        ("a", baggage.BaggageEntry("9", "prop=1")),
        ("b", baggage.BaggageEntry("2")),
    ]
    assert bag["a"] == "1"  # the original is untouched
    added = bag.with_entry("c", "3")
    assert list(added) == ["a", "b", "c"]
    assert changed.entry("a") == baggage.BaggageEntry("9", "prop=1")
    assert changed.entry("zz") is None


def test_without() -> None:
    bag = baggage.Baggage.from_values({"a": "1", "b": "2"})
    assert list(bag.without("a")) == ["b"]
    assert bag.without("zz") is bag


def test_merged_keeps_ours_first_then_adds_theirs() -> None:
    ours = baggage.Baggage.from_values({"x": "mine", "y": "mine"})
    theirs = baggage.Baggage.from_values({"z": "theirs", "x": "theirs"})
    merged = ours.merged(theirs)
    assert list(merged.entries()) == [
        ("x", baggage.BaggageEntry("mine")),
        ("y", baggage.BaggageEntry("mine")),
        ("z", baggage.BaggageEntry("theirs")),
    ]
    assert ours.merged(baggage.EMPTY_BAGGAGE) is ours
    assert baggage.EMPTY_BAGGAGE.merged(theirs) is theirs


def test_equality_and_hash_consider_values_and_metadata() -> None:
    a = baggage.Baggage({"k": baggage.BaggageEntry("v", "m")})
    b = baggage.Baggage({"k": baggage.BaggageEntry("v", "m")})
    c = baggage.Baggage({"k": baggage.BaggageEntry("v")})
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert "k" in repr(a)


def test_constructor_copies_its_input() -> None:
    source = {"k": baggage.BaggageEntry("v")}
    bag = baggage.Baggage(source)
    source["other"] = baggage.BaggageEntry("x")
    assert list(bag) == ["k"]
