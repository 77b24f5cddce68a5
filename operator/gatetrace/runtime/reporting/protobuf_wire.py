"""The protobuf wire format, by hand: the few primitives the OTLP reporter needs.

The runtime may not depend on the ``protobuf`` package, and a generic
message library would be slower than writing the bytes of a handful of
fixed messages directly. This module holds the primitives (varints, field
keys, length-delimited fields, a field iterator for decoding small replies);
:mod:`.otlp_encoding` writes the OTLP messages with them.

Reference: https://protobuf.dev/programming-guides/encoding/
"""

import struct
from collections.abc import Iterator

__all__ = [
    "FIXED32",
    "FIXED64",
    "LEN",
    "VARINT",
    "WireError",
    "field_key",
    "iter_fields",
    "len_field",
    "varint",
]

VARINT = 0
FIXED64 = 1
LEN = 2
FIXED32 = 5

_UINT64_MASK = (1 << 64) - 1
_SMALL = tuple(bytes((i,)) for i in range(128))
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def varint(value: int) -> bytes:
    """Base-128 varint of ``value``; negative numbers as 64-bit two's complement (int64)."""
    if 0 <= value < 128:
        return _SMALL[value]
    if 0 < value < 16384:  # two bytes: most span and attribute lengths
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    value &= _UINT64_MASK
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_key(number: int, wire_type: int) -> bytes:
    """The key (tag) of field ``number`` with ``wire_type``."""
    return varint((number << 3) | wire_type)


def len_field(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, embedded message) with a precomputed key."""
    size = len(payload)
    if size < 128:
        return key + _SMALL[size] + payload
    return key + varint(size) + payload


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint longer than 10 bytes at byte {pos}")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field number, wire type, value)`` of each field of one message.

    Varint and fixed values come as ``int``, length-delimited ones as ``bytes``.
    Raises :class:`WireError` on malformed input (group wire types included).
    """
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError(f"field number 0 at byte {pos}")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise WireError(f"truncated fixed64 field {number}")
            (value,) = _U64.unpack_from(data, pos)
            pos += 8
        elif wire_type == LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise WireError(f"field {number}: length {size} runs past the end")
            value = data[pos : pos + size]
            pos += size
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise WireError(f"truncated fixed32 field {number}")
            (value,) = _U32.unpack_from(data, pos)
            pos += 4
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
        yield number, wire_type, value
