"""The bounded protobuf reader: every bound of the encoding guide, and what the writer wrote."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatetrace.runtime.reporting import protobuf_read as rd
from gatetrace.runtime.reporting import protobuf_wire as pb


def read(data: bytes) -> list[tuple[int, int, int, int]]:
    return list(rd.fields(data, 0, len(data)))


def refused(data: bytes, words: str) -> None:
    with pytest.raises(pb.WireError, match=words):
        read(data)


# -- varints ---------------------------------------------------------------------


@settings(deadline=None)  # timing is not what these check; CI machines are loaded
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_reads_every_varint_the_writer_writes(value: int) -> None:
    encoded = pb.varint(value)
    assert rd.read_varint(encoded, 0, len(encoded)) == (value, len(encoded))


@settings(deadline=None)  # timing is not what these check; CI machines are loaded
@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_int64_is_twos_complement(value: int) -> None:
    encoded = pb.varint(value)
    assert rd.int64(rd.read_varint(encoded, 0, len(encoded))[0]) == value


def test_a_varint_longer_than_ten_bytes_is_refused() -> None:
    refused(b"\x08" + b"\xff" * 10 + b"\x01", "overflows 64 bits")


def test_a_tenth_byte_beyond_64_bits_is_refused() -> None:
    refused(b"\x08" + b"\xff" * 9 + b"\x02", "overflows 64 bits")
    assert read(b"\x08" + b"\xff" * 9 + b"\x01") == [(1, pb.VARINT, (1 << 64) - 1, 0)]


def test_a_truncated_varint_is_refused() -> None:
    refused(b"\x08\x80", "truncated varint")
    refused(b"\x80", "truncated varint")  # in the key


def test_a_varint_cannot_run_past_its_message() -> None:
    data = b"\x08\x80\x01"
    with pytest.raises(pb.WireError, match="truncated"):
        list(rd.fields(data, 0, 2))


# -- lengths and fixed fields ------------------------------------------------------


def test_a_length_past_the_message_is_refused() -> None:
    refused(b"\x0a\x05abc", "runs past")
    refused(b"\x0a" + pb.varint(1 << 62), "runs past")


def test_a_length_is_bounded_by_the_enclosing_message_not_the_buffer() -> None:
    data = b"\x0a\x02" + b"\x0a\x03abc"  # the outer field holds 2 bytes; the inner claims 3
    (_, _, a, b) = next(rd.fields(data, 0, len(data)))
    assert (a, b) == (2, 4)
    with pytest.raises(pb.WireError, match="runs past"):
        list(rd.fields(data, a, b, 1))


def test_truncated_fixed_fields_are_refused() -> None:
    refused(b"\x09" + b"\x00" * 7, "truncated fixed64")
    refused(b"\x0d\x00\x00\x00", "truncated fixed32")


def test_fixed_fields_and_doubles() -> None:
    data = b"\x09" + struct.pack("<d", -2.5) + b"\x15" + struct.pack("<I", 7)
    (n1, w1, v1, _), (n2, w2, v2, _) = read(data)
    assert (n1, w1, rd.double(v1)) == (1, pb.FIXED64, -2.5)
    assert (n2, w2, v2) == (2, pb.FIXED32, 7)


def test_payload_ranges_point_into_the_buffer() -> None:
    data = pb.len_field(pb.field_key(3, pb.LEN), b"hello")
    [(number, wire_type, a, b)] = read(data)
    assert (number, wire_type, data[a:b]) == (3, pb.LEN, b"hello")


# -- keys and wire types -----------------------------------------------------------


def test_field_number_zero_is_refused() -> None:
    refused(b"\x00\x01", "field number 0")


def test_field_numbers_past_2_29_are_refused() -> None:
    refused(pb.varint((1 << 29) << 3) + b"\x00", "out of range")
    assert read(pb.varint(((1 << 29) - 1) << 3) + b"\x00")[0][0] == (1 << 29) - 1


@pytest.mark.parametrize("wire_type", [6, 7])
def test_wire_types_that_do_not_exist_are_refused(wire_type: int) -> None:
    refused(pb.varint((1 << 3) | wire_type), "does not exist")


# -- groups: unknown to proto3, skipped ----------------------------------------------


def test_groups_are_skipped_with_their_fields() -> None:
    group = b"\x1b" + b"\x08\x01" + b"\x13" + b"\x0a\x01x" + b"\x14" + b"\x1c"  # 3 { 1, 2 { 1 } }
    assert read(group + b"\x20\x05") == [(4, pb.VARINT, 5, 0)]


def test_an_unclosed_group_is_refused() -> None:
    refused(b"\x1b\x08\x01", "never closed")


def test_a_group_closed_by_another_number_is_refused() -> None:
    refused(b"\x1b\x24", "closed as group 4")


def test_an_end_group_without_a_start_is_refused() -> None:
    refused(b"\x1c", "never started")


def test_groups_nested_too_deep_are_refused() -> None:
    depth = rd.MAX_DEPTH + 2
    refused(b"\x0b" * depth + b"\x0c" * depth, "nested deeper")


# -- nesting ------------------------------------------------------------------------


def test_messages_nested_deeper_than_the_limit_are_refused() -> None:
    data = b""
    with pytest.raises(pb.WireError, match="nested deeper"):
        list(rd.fields(data, 0, 0, rd.MAX_DEPTH + 1))
    assert list(rd.fields(data, 0, 0, rd.MAX_DEPTH)) == []


# -- strings ------------------------------------------------------------------------


def test_strings_must_be_utf8() -> None:
    data = b"ok\xff"
    with pytest.raises(pb.WireError, match="not valid UTF-8"):
        rd.text(data, 0, 3)
    assert rd.text("héllo".encode(), 0, 6) == "héllo"


# -- anything at all: only WireError ---------------------------------------------------


@settings(deadline=None)  # timing is not what these check; CI machines are loaded
@given(st.binary(max_size=200))
def test_any_bytes_read_or_raise_wire_error(data: bytes) -> None:
    try:
        found = read(data)
    except pb.WireError:
        return
    for _, wire_type, a, b in found:
        if wire_type == pb.LEN:
            assert 0 <= a <= b <= len(data)


@settings(deadline=None)  # timing is not what these check; CI machines are loaded
@given(
    st.lists(
        st.tuples(st.integers(1, (1 << 29) - 1), st.integers(0, (1 << 64) - 1), st.binary()),
        max_size=10,
    )
)
def test_reads_back_what_the_writer_wrote(items: list[tuple[int, int, bytes]]) -> None:
    data = b"".join(
        pb.field_key(n, pb.VARINT) + pb.varint(v) + pb.len_field(pb.field_key(n, pb.LEN), p)
        for n, v, p in items
    )
    found = read(data)
    expected = []
    for n, v, p in items:
        expected.append((n, pb.VARINT, v))
        expected.append((n, pb.LEN, p))
    assert [(n, w, data[a:b] if w == pb.LEN else a) for n, w, a, b in found] == expected
