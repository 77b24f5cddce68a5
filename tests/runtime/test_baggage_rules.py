"""BaggageRules: allow/deny lists, entry and byte limits, counted drops."""

import pytest

from gatetrace.runtime import baggage, baggage_rules, metrics, propagation
from gatetrace.runtime.propagation import baggage as baggage_propagation
from gatetrace.runtime.propagation import failures, jaeger


def _bag(*pairs: tuple[str, str]) -> baggage.Baggage:
    return baggage.Baggage.from_values(dict(pairs))


def test_empty_allow_list_allows_every_key_not_denied() -> None:
    rules = baggage_rules.BaggageRules(deny=["secret"])
    out = rules.apply(_bag(("tenant", "a"), ("secret", "x"), ("user", "b")))
    assert dict(out) == {"tenant": "a", "user": "b"}
    assert rules.dropped("denied") == 1


def test_star_allows_every_key_like_the_policy_default() -> None:
    rules = baggage_rules.BaggageRules(allow=["*"], deny=["secret"])
    assert rules.allow == frozenset()
    assert dict(rules.apply(_bag(("a", "1"), ("secret", "2")))) == {"a": "1"}


def test_allow_list_keeps_only_exact_keys() -> None:
    rules = baggage_rules.BaggageRules(allow=["tenant-id"])
    out = rules.apply(_bag(("tenant-id", "t1"), ("Tenant-Id", "t2"), ("tenant-idx", "t3")))
    assert dict(out) == {"tenant-id": "t1"}
    assert rules.dropped("not_allowed") == 2
    assert rules.allows("tenant-id")
    assert not rules.allows("other")


def test_deny_wins_over_allow() -> None:
    rules = baggage_rules.BaggageRules(allow=["a", "b"], deny=["b"])
    assert dict(rules.apply(_bag(("a", "1"), ("b", "2")))) == {"a": "1"}


def test_max_entries_keeps_the_first_entries_in_order() -> None:
    rules = baggage_rules.BaggageRules(max_entries=2)
    out = rules.apply(_bag(("k1", "1"), ("k2", "2"), ("k3", "3"), ("k4", "4")))
    assert list(out) == ["k1", "k2"]
    assert rules.dropped("max_entries") == 2


def test_max_bytes_counts_the_w3c_serialisation_and_lets_smaller_entries_fit() -> None:
    # "a=1" (3 bytes) + ",bbbb=2222" (10) = 13; "c=3" needs 4 more with the comma.
    rules = baggage_rules.BaggageRules(max_bytes=17)
    out = rules.apply(_bag(("a", "1"), ("bbbb", "2222"), ("long", "x" * 50), ("c", "3")))
    assert dict(out) == {"a": "1", "bbbb": "2222", "c": "3"}
    assert rules.dropped("max_bytes") == 1


def test_max_bytes_counts_utf8_bytes_and_metadata() -> None:
    rules = baggage_rules.BaggageRules(max_bytes=8)
    bag = baggage.Baggage({"k": baggage.BaggageEntry("é" * 3), "m": baggage.BaggageEntry("v", "p")})
    # "k=" + 6 bytes = 8 fits exactly; ",m=v;p" would need 6 more.
    out = rules.apply(bag)
    assert list(out) == ["k"]


def test_values_from_raw_header_bytes_are_sized_without_raising() -> None:
    # aiohttp decodes header bytes that are not UTF-8 with ``surrogateescape``; the
    # jaeger/xtrace formats carry such a value into baggage as it is.
    raw = b"\xff\xfe".decode("utf-8", "surrogateescape")
    rules = baggage_rules.BaggageRules(max_bytes=10)
    bag = baggage.Baggage({"k": baggage.BaggageEntry(raw), "big": baggage.BaggageEntry(raw)})
    # "k=" + 2 surrogates of 3 bytes = 8 fits; ",big=..." would need 11 more.
    out = rules.apply(bag)
    assert list(out) == ["k"]
    assert rules.dropped("max_bytes") == 1


def test_untrusted_flood_is_cut_to_the_limits() -> None:
    rules = baggage_rules.BaggageRules(max_entries=64, max_bytes=8192)
    flood = _bag(*((f"key{i}", "v" * 200) for i in range(10_000)))
    out = rules.apply(flood)
    size = len(",".join(f"{k}={v}" for k, v in out.items()).encode())
    assert len(out) <= 64
    assert size <= 8192
    assert rules.dropped("max_entries") + rules.dropped("max_bytes") == 10_000 - len(out)


def test_unchanged_baggage_is_returned_as_is_and_metadata_kept() -> None:
    rules = baggage_rules.BaggageRules()
    bag = baggage.Baggage({"a": baggage.BaggageEntry("1", "prop=x")})
    assert rules.apply(bag) is bag
    assert rules.apply(baggage.EMPTY_BAGGAGE) is baggage.EMPTY_BAGGAGE


def test_everything_dropped_gives_empty_baggage() -> None:
    rules = baggage_rules.BaggageRules(allow=["only"])
    assert rules.apply(_bag(("x", "1"))) is baggage.EMPTY_BAGGAGE


def test_drops_are_counted_in_the_given_registry() -> None:
    registry = metrics.Registry()
    rules = baggage_rules.BaggageRules(deny=["d"], registry=registry)
    rules.apply(_bag(("d", "1")))
    text = metrics.render_prometheus([registry])
    assert 'gatetrace_baggage_dropped_total{reason="denied"} 1' in text


@pytest.mark.parametrize("field", ["max_entries", "max_bytes"])
def test_negative_limits_are_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        baggage_rules.BaggageRules(**{field: -1})  # type: ignore[arg-type]


def test_entries_a_format_leaves_out_at_its_parse_bound_count_as_baggage_drops() -> None:
    registry = metrics.Registry()
    inner = failures.MetricsFailureCounter(registry)
    counter = baggage_rules.ParseLimitDrops(inner, registry)
    limits = propagation.BaggageLimits(max_entries=2, max_bytes=1024)
    getter = propagation.DictGetter()
    w3c = baggage_propagation.BaggagePropagator(counter, limits=limits)
    w3c.extract({"baggage": "a=1,b=2,c=3,d=4"}, getter, propagation.EMPTY)
    uber = jaeger.JaegerPropagator(counter, limits=limits)
    uber.extract({f"uberctx-k{i}": "v" for i in range(3)}, getter, propagation.EMPTY)
    counter.failed("b3", "limit")  # not a baggage format: no entry was dropped
    rules = baggage_rules.BaggageRules(registry=registry)
    assert rules.dropped("parse_limit") == 3
    assert inner.count("baggage", "limit") == 2 and inner.count("b3", "limit") == 1
