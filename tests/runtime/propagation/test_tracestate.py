"""tracestate, rule by rule from the W3C Trace Context Level 2 text, in both directions.

Each rule of the spec's "tracestate Header" and "Mutating the tracestate Field"
sections is checked as a receiver (``extract``: the members a valid
``traceparent`` continues with, or the whole tracestate discarded) and as a
sender (``inject``: the header value written, or the member left out).
"""

import pytest
from proptools import context, counter, counts, extract, inject

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import composite, tracecontext, tracestate

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

LCALPHA = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
KEYCHARS = LCALPHA + DIGITS + "_-*/@"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
"""chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E."""


def received(*fields: str) -> dict[str, str] | None:
    """What a receiver continues with for these ``tracestate`` fields (None: discarded)."""
    failures = counter()
    found = extract(
        tracecontext.TraceContextPropagator(failures),
        [("traceparent", TP), *(("tracestate", f) for f in fields)],
    )
    assert found.context is not None, "a tracestate problem never affects the traceparent"
    members = found.context.trace_state
    assert len({k for k, _ in members}) == len(members), "one member per key"
    if counts(failures):
        assert not members
        return None
    return dict(members)


def sent(members: _sc.TraceState, max_chars: int = 512) -> str | None:
    """The ``tracestate`` a sender writes for ``members`` (None: no header)."""
    propagator = tracecontext.TraceContextPropagator(max_tracestate_chars=max_chars)
    return inject(propagator, context(trace_state=members)).get("tracestate")


def round_trip(*fields: str) -> str | None:
    """Receive the fields, continue the trace, send: what the next hop gets."""
    members = received(*fields)
    return None if members is None else sent(tuple(members.items()), max_chars=100_000)


class TestKey:
    """key = ( lcalpha / DIGIT ) 0*255 ( keychar );
    keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"."""

    @pytest.mark.parametrize("first", LCALPHA + DIGITS)
    def test_begins_with_a_lowercase_letter_or_a_digit(self, first: str) -> None:
        assert tracestate.is_valid_key(first)
        assert received(f"{first}=1") == {first: "1"}
        assert sent(((first, "1"),)) == f"{first}=1"

    @pytest.mark.parametrize("first", "_-*/@ABZ.:%é")
    def test_begins_with_nothing_else(self, first: str) -> None:
        key = first + "vendor"
        assert not tracestate.is_valid_key(key)
        assert received(f"{key}=1,bar=2") is None
        assert sent(((key, "1"), ("bar", "2"))) == "bar=2"

    @pytest.mark.parametrize("char", KEYCHARS)
    def test_every_keychar_after_the_first(self, char: str) -> None:
        key = f"k{char}{char}z"
        assert tracestate.is_valid_key(key)
        assert round_trip(f"{key}=1") == f"{key}=1"
        assert sent(((key, "1"),)) == f"{key}=1"

    @pytest.mark.parametrize("char", "A Z.:;!#$%&+?~^|=\t\x00\x7fé\u0661")
    def test_no_other_char_after_the_first(self, char: str) -> None:
        key = f"k{char}z"
        assert not tracestate.is_valid_key(key)
        assert received(f"foo=1,{key}=1") is None
        assert sent((("foo", "1"), (key, "1"))) == "foo=1"

    @pytest.mark.parametrize(
        "key",
        [
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "1foo@bar",
            "foo@1bar",
            "7@",
            "t@" + "v" * 15,  # a system id past Level 1's 14 characters
            "t" * 241 + "@" + "v" * 14,  # the longest Level 1 tenant
            "t" * 242 + "@v",  # a tenant past Level 1's 241 characters
            "a" + "@" * 255,
            "z" * 256,
        ],
    )
    def test_at_signs_anywhere_after_the_first_char_up_to_256_chars(self, key: str) -> None:
        assert tracestate.is_valid_key(key)
        assert received("foo=1", f"{key}=1") == {"foo": "1", key: "1"}
        assert round_trip("foo=1", f"{key}=1") == f"foo=1,{key}=1"

    @pytest.mark.parametrize(
        "key", ["@", "@foo", "@foo@bar", "z" * 257, "t" * 242 + "@" + "v" * 14, "a" + "@" * 256, ""]
    )
    def test_a_key_starting_with_at_or_over_256_chars_discards_the_header(self, key: str) -> None:
        assert not tracestate.is_valid_key(key)
        assert received("foo=1", f"{key}=1") is None
        assert sent((("foo", "1"), (key, "1"))) == "foo=1"


class TestValue:
    """value = 0*255(chr) nblk-chr: up to 256 printable ASCII characters but ``,`` and
    ``=``, ending in a character that is not a space."""

    def test_every_allowed_char(self) -> None:
        assert tracestate.is_valid_value(VALUE_CHARS)
        assert received("foo=" + VALUE_CHARS) == {"foo": VALUE_CHARS}
        assert sent((("foo", VALUE_CHARS),)) == "foo=" + VALUE_CHARS

    @pytest.mark.parametrize("char", VALUE_CHARS.replace(" ", ""))
    def test_every_nblk_char_alone(self, char: str) -> None:
        assert round_trip(f"foo={char}") == f"foo={char}"

    @pytest.mark.parametrize(
        "char", ["=", "\t", "\x00", "\x1f", "\x7f", "\x80", "é", "\u2028", "\r", "\n"]
    )
    def test_no_other_char(self, char: str) -> None:
        value = f"a{char}b"
        assert not tracestate.is_valid_value(value)
        assert received(f"foo=1,bar={value}") is None
        assert sent((("foo", "1"), ("bar", value))) == "foo=1"

    def test_a_comma_ends_the_value(self) -> None:
        assert not tracestate.is_valid_value("a,b")
        assert received("foo=a,b") is None  # "b" is a list member without "="
        assert sent((("foo", "a,b"), ("bar", "2"))) == "bar=2"

    def test_empty_value_discards_the_header(self) -> None:
        assert not tracestate.is_valid_value("")
        assert received("foo=,bar=3") is None
        assert received("foo=   ,bar=3") is None  # trailing spaces are not part of a value
        assert sent((("foo", ""), ("bar", "3"))) == "bar=3"

    def test_up_to_256_chars(self) -> None:
        assert round_trip("foo=" + "v" * 256) == "foo=" + "v" * 256
        assert round_trip("foo=" + " " * 255 + "v") == "foo=" + " " * 255 + "v"
        assert received("foo=" + "v" * 257) is None
        assert received("foo=" + " " * 256 + "v") is None
        assert sent((("foo", "v" * 257), ("bar", "2"))) == "bar=2"

    def test_leading_spaces_are_part_of_the_value(self) -> None:
        assert received("foo=  a b") == {"foo": "  a b"}
        assert round_trip("foo=  a b,bar= 2") == "foo=  a b,bar= 2"
        assert sent((("foo", " 1"),)) == "foo= 1"

    def test_trailing_spaces_are_optional_whitespace(self) -> None:
        assert received("foo=a  ,bar=2 \t ") == {"foo": "a", "bar": "2"}
        assert round_trip("foo=a  ") == "foo=a"
        assert not tracestate.is_valid_value("a ")
        assert sent((("foo", "a "), ("bar", "2"))) == "bar=2"  # never sent


class TestList:
    """list = list-member 0*31( OWS "," OWS list-member ); list-member = (key "=" value) / OWS."""

    @pytest.mark.parametrize(
        "field",
        [
            "foo=1,bar=2",
            "foo=1 ,bar=2",
            "foo=1, bar=2",
            "foo=1 \t , \t bar=2",
            "foo=1\t \t,\t \tbar=2",
            " foo=1,bar=2 ",
            "\tfoo=1,bar=2\t",
            "\t foo=1 \t,\t bar=2 \t",
        ],
    )
    def test_spaces_and_tabs_around_members_are_ignored(self, field: str) -> None:
        assert received(field) == {"foo": "1", "bar": "2"}
        assert round_trip(field) == "foo=1,bar=2"  # sent without optional whitespace

    @pytest.mark.parametrize("space", ["\x0b", "\x0c", "\r", "\n", "\u00a0"])
    def test_optional_whitespace_is_only_space_and_tab(self, space: str) -> None:
        assert received(f"foo=1,{space}bar=2") is None

    @pytest.mark.parametrize(
        "field", [",foo=1", "foo=1,", ",,foo=1,,", " , foo=1 ,\t,", "\t,\t,foo=1, ,"]
    )
    def test_empty_and_whitespace_only_members_are_allowed(self, field: str) -> None:
        assert received(field) == {"foo": "1"}
        assert round_trip(field) == "foo=1"

    @pytest.mark.parametrize("field", ["", " ", "\t", ",", " , \t, "])
    def test_an_empty_header_is_accepted_and_not_sent(self, field: str) -> None:
        assert received(field) == {}
        assert received(field, "foo=1", field) == {"foo": "1"}
        assert sent(()) is None

    def test_a_member_without_equals_discards_the_header(self) -> None:
        assert received("foo=1,bar") is None
        assert received("foo=1,=2") is None

    def test_several_fields_are_combined_in_order(self) -> None:
        fields = ("foo=1,bar=2", "rojo=1,congo=2", "baz=3")
        assert received(*fields) == {"foo": "1", "bar": "2", "rojo": "1", "congo": "2", "baz": "3"}
        assert round_trip(*fields) == "foo=1,bar=2,rojo=1,congo=2,baz=3"  # sent as one field
        assert round_trip("foo=1", "", "bar=2", " ") == "foo=1,bar=2"

    def test_a_bad_member_in_any_field_discards_all_of_them(self) -> None:
        failures = counter()
        found = extract(
            tracecontext.TraceContextPropagator(failures),
            [("traceparent", TP), ("tracestate", "foo=1"), ("tracestate", "Bar=2")],
        )
        assert found.context is not None and found.context.trace_state == ()
        assert counts(failures) == {("tracecontext", "tracestate_member"): 1}

    def test_without_a_valid_traceparent_tracestate_is_not_read(self) -> None:
        failures = counter()
        propagator = tracecontext.TraceContextPropagator(failures)
        assert extract(propagator, [("tracestate", "foo=1")]).context is None
        assert extract(propagator, [("traceparent", "zz"), ("tracestate", "Bad")]).context is None
        assert counts(failures) == {("tracecontext", "format"): 1}  # no tracestate failure


def test_a_higher_traceparent_version_still_has_its_tracestate_parsed() -> None:
    """Versioning of tracestate: parse it if a higher version is detected."""
    found = extract(
        tracecontext.TraceContextPropagator(),
        [("traceparent", "cc" + TP[2:] + "-what-comes-next"), ("tracestate", "foo@=1, bar=2")],
    )
    assert found.context is not None
    assert found.context.trace_state == (("foo@", "1"), ("bar", "2"))
    assert inject(tracecontext.TraceContextPropagator(), found.context)["tracestate"] == (
        "foo@=1,bar=2"
    )


class TestAnotherFormatWon:
    """A receiver MUST send a received tracestate on: when an earlier format in the
    extract order gives the same trace as a valid traceparent, its tracestate is kept."""

    B3 = "0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-1"

    def _found(
        self, *headers: tuple[str, str]
    ) -> tuple[_sc.TraceState, str, dict[tuple[str, ...], float]]:
        failures = counter()
        propagator = composite.build_propagator(["b3", "tracecontext"], [], failures)
        found = extract(propagator, list(headers))
        assert found.context is not None and found.format == "b3"
        assert found.context.span_id_hex == "00f067aa0ba902b7"  # b3's context, not replaced
        return found.context.trace_state, found.format, counts(failures)

    def test_same_trace_keeps_the_tracestate(self) -> None:
        state, _, failed = self._found(
            ("b3", self.B3), ("traceparent", TP), ("tracestate", "foo@=1,bar=2")
        )
        assert state == (("foo@", "1"), ("bar", "2")) and not failed

    def test_another_trace_does_not(self) -> None:
        other = TP.replace("0af7", "1af7")
        state, _, _ = self._found(("b3", self.B3), ("traceparent", other), ("tracestate", "a=1"))
        assert state == ()

    def test_an_invalid_traceparent_does_not_and_is_not_counted(self) -> None:
        for bad in ("ff" + TP[2:], TP + "x", "nonsense"):
            state, _, failed = self._found(
                ("b3", self.B3), ("traceparent", bad), ("tracestate", "a=1")
            )
            assert state == () and not failed
        state, _, failed = self._found(
            ("b3", self.B3), ("traceparent", TP), ("traceparent", TP), ("tracestate", "a=1")
        )
        assert state == () and not failed

    def test_a_bad_tracestate_is_discarded_and_counted(self) -> None:
        state, _, failed = self._found(("b3", self.B3), ("traceparent", TP), ("tracestate", "@a=1"))
        assert state == () and failed == {("tracecontext", "tracestate_member"): 1}

    def test_no_tracestate_nothing_read(self) -> None:
        state, _, failed = self._found(("b3", self.B3), ("traceparent", "ff" + TP[2:]))
        assert state == () and not failed


class TestDuplicatedKeys:
    """Senders must not repeat a key; a receiver keeps the header (Level 2) and may drop
    the repeats: we keep the first member of each key."""

    @pytest.mark.parametrize(
        ("fields", "kept"),
        [
            (("foo=1,foo=1",), "foo=1"),
            (("foo=1,foo=2",), "foo=1"),
            (("foo=1", "foo=2"), "foo=1"),
            (("foo=1,bar=2,foo=3,baz=4",), "foo=1,bar=2,baz=4"),
            (("a@b=1,a@b=2,a@=3",), "a@b=1,a@=3"),
        ],
    )
    def test_the_first_member_of_each_key_is_kept(self, fields: tuple[str, ...], kept: str) -> None:
        assert round_trip(*fields) == kept

    def test_a_sender_never_repeats_a_key(self) -> None:
        assert sent((("foo", "1"), ("bar", "2"), ("foo", "3"))) == "foo=1,bar=2"


class TestMemberCount:
    """There can be a maximum of 32 list-members in a list."""

    def test_32_members_in_one_or_several_fields(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 33)]
        assert round_trip(",".join(members)) == ",".join(members)
        fields = [",".join(members[i : i + 10]) for i in range(0, 32, 10)]
        assert round_trip(*fields) == ",".join(members)

    def test_33_members_discard_the_header(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 34)]
        assert received(",".join(members)) is None
        assert received(*(",".join(members[i : i + 10]) for i in range(0, 33, 10))) is None

    def test_empty_members_do_not_count(self) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 33)]
        assert len(received(", ,".join(members) + ",,,") or {}) == 32

    def test_repeated_members_count(self) -> None:
        """33 list-members are over the limit even if one repeats a key."""
        assert received(",".join(["foo=1"] * 33)) is None

    def test_a_sender_writes_at_most_32_dropping_the_right_most(self) -> None:
        members = tuple((f"k{i:02d}", "1") for i in range(33))
        assert sent(members, max_chars=10_000) == ",".join(f"k{i:02d}=1" for i in range(32))


class TestSizeLimit:
    """Vendors SHOULD propagate at least 512 characters of a combined header (commas and
    OWS included); truncation drops whole entries, those over 128 characters first, then
    entries from the end."""

    @staticmethod
    def _members(*lengths: int) -> _sc.TraceState:
        """Members named m00, m01... whose ``key=value`` is exactly ``length`` characters."""
        return tuple((f"m{i:02d}", "v" * (length - 4)) for i, length in enumerate(lengths))

    def test_512_characters_are_propagated_untouched(self) -> None:
        members = self._members(*[128] * 3, 125)  # 3 * 128 + 125 + 3 commas = 512
        header = ",".join(f"{k}={v}" for k, v in members)
        assert len(header) == 512
        assert round_trip(header) == header
        assert sent(members) == header

    def test_a_received_header_over_512_is_accepted(self) -> None:
        members = self._members(*[129] * 8)
        header = ",".join(f"{k}={v}" for k, v in members)
        assert received(header) == dict(members)

    def test_one_character_over_drops_a_whole_entry_from_the_end(self) -> None:
        members = self._members(*[128] * 3, 126)  # 513
        assert sent(members) == ",".join(f"{k}={v}" for k, v in members[:3])

    def test_entries_over_128_go_first_the_right_most_first(self) -> None:
        members = self._members(100, 129, 100, 129, 100, 50)  # 613: one large entry goes
        assert sent(members) == ",".join(f"{k}={v}" for k, v in members[:3] + members[4:])
        members = self._members(129, 129, 129, 129, 129, 20)  # 670: two large ones go
        assert sent(members) == ",".join(f"{k}={v}" for k, v in members[:3] + members[5:])

    def test_an_entry_of_128_is_not_large(self) -> None:
        members = self._members(128, *[60] * 6, 20)  # 515: the end goes, not the first
        assert sent(members) == ",".join(f"{k}={v}" for k, v in members[:7])

    def test_then_entries_from_the_end(self) -> None:
        members = self._members(129, *[50] * 10)  # 129 + 500 + 10 = 639
        kept = sent(members)
        assert kept == ",".join(f"{k}={v}" for k, v in members[1:])  # 509: fits
        members = self._members(*[60] * 10)  # 609
        assert sent(members) == ",".join(f"{k}={v}" for k, v in members[:8])  # 487

    def test_a_single_member_over_the_limit_sends_no_header(self) -> None:
        failures = counter()
        propagator = tracecontext.TraceContextPropagator(failures)
        carrier = inject(propagator, context(trace_state=(("k" * 256, "v" * 256),)))
        assert "tracestate" not in carrier and "traceparent" in carrier
        assert counts(failures) == {("tracecontext", "tracestate_truncated"): 1}

    def test_truncation_is_counted(self) -> None:
        failures = counter()
        propagator = tracecontext.TraceContextPropagator(failures)
        inject(propagator, context(trace_state=self._members(*[128] * 3, 126)))
        assert counts(failures) == {("tracecontext", "tracestate_truncated"): 1}


class TestMutation:
    """A vendor adds its entry at the front, updates it by moving it to the front, deletes
    it; other entries keep their order, a key is never repeated, past 32 members the
    right-most goes."""

    def test_a_new_member_goes_to_the_front(self) -> None:
        members = (("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE"))
        updated = tracestate.set_member(members, "gatetrace", "p1")
        assert updated == (("gatetrace", "p1"), *members)
        assert sent(updated) == "gatetrace=p1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

    def test_an_updated_member_moves_to_the_front(self) -> None:
        members = (("congo", "congosFirstPosition"), ("rojo", "rojosFirstPosition"))
        updated = tracestate.set_member(members, "rojo", "rojosSecondPosition")
        assert sent(updated) == "rojo=rojosSecondPosition,congo=congosFirstPosition"
        again = tracestate.set_member(updated, "congo", "congosSecondPosition")
        assert sent(again) == "congo=congosSecondPosition,rojo=rojosSecondPosition"

    def test_the_key_is_never_repeated(self) -> None:
        members = (("a", "1"), ("me", "old"), ("b", "2"), ("me", "older"))
        assert tracestate.set_member(members, "me", "new") == (
            ("me", "new"),
            ("a", "1"),
            ("b", "2"),
        )

    def test_adding_to_32_members_drops_the_right_most(self) -> None:
        members = tuple((f"k{i:02d}", "1") for i in range(32))
        updated = tracestate.set_member(members, "me", "1")
        assert len(updated) == 32
        assert updated == (("me", "1"), *members[:31])
        assert tracestate.set_member(members, "k31", "2") == (("k31", "2"), *members[:31])

    def test_level_2_keys_can_be_set(self) -> None:
        for key in ("tenant@gatetrace", "gt@", "1a@@b", "z" * 256):
            assert tracestate.set_member((), key, "1") == ((key, "1"),)

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("@gatetrace", "1", "tracestate key '@gatetrace'"),
            ("GateTrace", "1", "tracestate key 'GateTrace'"),
            ("z" * 257, "1", "tracestate key 'zzzz"),
            ("gatetrace", "", "tracestate value for 'gatetrace'"),
            ("gatetrace", "a=b", "tracestate value for 'gatetrace': 'a=b'"),
            ("gatetrace", "a ", "tracestate value for 'gatetrace': 'a '"),
            ("gatetrace", "v" * 300, "(300 characters)"),
        ],
    )
    def test_an_invalid_member_is_refused_with_its_name(
        self, key: str, value: str, message: str
    ) -> None:
        with pytest.raises(tracestate.InvalidMemberError) as error:
            tracestate.set_member((("a", "1"),), key, value)
        assert message in str(error.value)
        assert len(str(error.value)) < 300  # echoed values are cut

    def test_a_member_is_deleted_and_the_order_kept(self) -> None:
        members = (("a", "1"), ("me", "x"), ("b", "2"), ("me", "y"))
        assert tracestate.delete_member(members, "me") == (("a", "1"), ("b", "2"))
        assert tracestate.delete_member(members, "absent") == members
