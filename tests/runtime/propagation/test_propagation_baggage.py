"""W3C baggage: grammar, percent-encoding, properties, limits, counted failures."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proptools import context, counter, counts, extract, inject

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime.propagation import baggage as w3c
from gatetrace.runtime.propagation import base, percent


def _values(found: base.Extracted) -> dict[str, str]:
    return dict(found.baggage)


class TestExtract:
    def test_members_values_and_ows(self) -> None:
        found = extract(w3c.BaggagePropagator(), {"baggage": " a=1 ,\tb = 2,c=x=y "})
        assert _values(found) == {"a": "1", "b": "2", "c": "x=y"}

    def test_percent_decoding_utf8(self) -> None:
        found = extract(w3c.BaggagePropagator(), {"baggage": "k=caf%C3%A9%20au%2Clait,p=a+b"})
        assert _values(found) == {"k": "café au,lait", "p": "a+b"}

    def test_invalid_utf8_becomes_replacement_character(self) -> None:
        found = extract(w3c.BaggagePropagator(), {"baggage": "k=%FFx,j=%zz"})
        assert _values(found) == {"k": "\ufffdx", "j": "%zz"}

    def test_keys_are_tokens_taken_literally(self) -> None:
        found = extract(
            w3c.BaggagePropagator(), {"baggage": "Tenant-ID=1,a%20b=2,x!#$&'*+.^_`|~=3"}
        )
        assert _values(found) == {"Tenant-ID": "1", "a%20b": "2", "x!#$&'*+.^_`|~": "3"}

    def test_properties_kept_as_normalised_metadata(self) -> None:
        found = extract(w3c.BaggagePropagator(), {"baggage": "k=v ; p1 = x ;flag; ,j=w"})
        assert found.baggage.entry("k") == _baggage.BaggageEntry("v", ";p1=x;flag")
        assert found.baggage.entry("j") == _baggage.BaggageEntry("w", "")

    def test_several_headers_combined_and_empty_members_skipped(self) -> None:
        found = extract(
            w3c.BaggagePropagator(), [("baggage", "a=1,,"), ("Baggage", " "), ("BAGGAGE", "b=2")]
        )
        assert _values(found) == {"a": "1", "b": "2"}

    @pytest.mark.parametrize(
        "member",
        [
            "novalue",
            "=1",
            "a b=1",
            "k=a b",
            'k="q"',
            "k=a\\b",
            "k=1;p=a b",
            "k=1;=x",
            "k=\u00e9",
            "(k)=1",
        ],
    )
    def test_malformed_member_dropped_alone_and_counted(self, member: str) -> None:
        failures = counter()
        found = extract(w3c.BaggagePropagator(failures), {"baggage": f"a=1,{member},z=2"})
        assert _values(found) == {"a": "1", "z": "2"}
        assert counts(failures) == {("baggage", "member"): 1}

    def test_repeated_key_keeps_first(self) -> None:
        failures = counter()
        found = extract(w3c.BaggagePropagator(failures), {"baggage": "a=1,a=2"})
        assert _values(found) == {"a": "1"}
        assert counts(failures) == {("baggage", "duplicate"): 1}

    def test_at_least_64_members_and_8192_bytes_are_read(self) -> None:
        members = [f"k{i:02d}={'v' * 123}" for i in range(63)] + ["k63=" + "v" * 124]
        header = ",".join(members)
        assert len(header) == 8192
        found = extract(w3c.BaggagePropagator(), {"baggage": header})
        assert len(found.baggage) == 64

    def test_over_limit_members_dropped_whole_and_counted(self) -> None:
        failures = counter()
        limits = base.BaggageLimits(max_entries=3, max_bytes=20)
        found = extract(
            w3c.BaggagePropagator(failures, limits),
            {"baggage": "a=1,b=22222222222222222,c=3,d=4,e=5"},
        )
        assert _values(found) == {"a": "1", "c": "3", "d": "4"}
        assert counts(failures) == {("baggage", "limit"): 2}

    def test_huge_header_read_up_to_a_member_boundary(self) -> None:
        failures = counter()
        header = ",".join(f"k{i}=v" for i in range(20_000))
        found = extract(w3c.BaggagePropagator(failures), {"baggage": header})
        assert len(found.baggage) == 64
        assert all(value == "v" for value in found.baggage.values())
        assert counts(failures)[("baggage", "too_long")] == 1

    def test_baggage_is_merged_with_what_earlier_formats_found(self) -> None:
        earlier = base.Extracted(baggage=_baggage.Baggage.from_values({"a": "first"}))
        found = w3c.BaggagePropagator().extract(
            {"baggage": "a=second,b=2"}, base.DictGetter(), earlier
        )
        assert _values(found) == {"a": "first", "b": "2"}


class TestInject:
    def test_values_percent_encoded(self) -> None:
        bag = _baggage.Baggage.from_values({"k": "café au,lait;100% +", "e": ""})
        carrier = inject(w3c.BaggagePropagator(), context(baggage=bag))
        assert carrier == {"baggage": "k=caf%C3%A9%20au%2Clait%3B100%25%20%2B,e="}

    def test_metadata_written_back(self) -> None:
        bag = _baggage.Baggage({"k": _baggage.BaggageEntry("v", ";p=1;flag")})
        assert inject(w3c.BaggagePropagator(), context(baggage=bag)) == {"baggage": "k=v;p=1;flag"}

    def test_no_baggage_no_header(self) -> None:
        assert inject(w3c.BaggagePropagator(), context()) == {}

    def test_unwritable_members_dropped_and_counted(self) -> None:
        failures = counter()
        bag = _baggage.Baggage(
            {
                "bad key": _baggage.BaggageEntry("1"),
                "surrogate": _baggage.BaggageEntry("\ud800"),
                "meta": _baggage.BaggageEntry("1", "p=no-leading-semicolon"),
                "ok": _baggage.BaggageEntry("1"),
            }
        )
        carrier = inject(w3c.BaggagePropagator(failures), context(baggage=bag))
        assert carrier == {"baggage": "ok=1"}
        assert counts(failures) == {("baggage", "inject_member"): 3}

    def test_limits_never_write_a_partial_member(self) -> None:
        failures = counter()
        bag = _baggage.Baggage.from_values({f"k{i:03d}": "v" * 100 for i in range(100)})
        carrier = inject(w3c.BaggagePropagator(failures), context(baggage=bag))
        members = carrier["baggage"].split(",")
        assert len(members) == 64 and len(carrier["baggage"]) <= 8192
        assert all(m.endswith("v" * 100) for m in members)
        assert counts(failures) == {("baggage", "limit"): 36}

    def test_a_big_member_is_skipped_and_smaller_ones_still_fit(self) -> None:
        limits = base.BaggageLimits(max_bytes=30)
        bag = _baggage.Baggage.from_values({"a": "1", "big": "x" * 40, "b": "2"})
        assert inject(w3c.BaggagePropagator(limits=limits), context(baggage=bag)) == {
            "baggage": "a=1,b=2"
        }


def test_percent_encoding_round_trips_any_text() -> None:
    text = "".join(chr(c) for c in range(0x20, 0x180)) + "\U0001f600"
    encoded = percent.encode(text)
    assert encoded is not None and percent.BAGGAGE_OCTETS.issuperset(encoded)
    assert percent.decode(encoded) == text


class TestPlainFastPath:
    """``k=v,k=v`` headers take a one-regex path; it must agree with the general one."""

    def test_65_plain_members_keep_64_and_count_one(self) -> None:
        failures = counter()
        header = ",".join(f"k{i}=v" for i in range(65))
        found = extract(w3c.BaggagePropagator(failures), {"baggage": header})
        assert len(found.baggage) == 64 and "k64" not in found.baggage
        assert counts(failures) == {("baggage", "limit"): 1}

    @given(
        st.lists(
            st.tuples(
                st.text(sorted(percent.TOKEN_CHARS - {"%"}), min_size=1, max_size=6),
                st.text(sorted(percent.BAGGAGE_OCTETS - {"%"}), max_size=8),
            ),
            min_size=1,
            max_size=70,
        )
    )
    @settings(max_examples=200, deadline=None)
    def test_same_result_as_the_general_path(self, members: list[tuple[str, str]]) -> None:
        header = ",".join(f"{k}={v}" for k, v in members)
        fast_failures, slow_failures = counter(), counter()
        fast = extract(w3c.BaggagePropagator(fast_failures), {"baggage": header})
        # trailing OWS is not part of any member, but it keeps the header off the fast path
        slow = extract(w3c.BaggagePropagator(slow_failures), {"baggage": header + " "})
        assert fast == slow
        assert list(fast.baggage) == list(slow.baggage)
        assert counts(fast_failures) == counts(slow_failures)
