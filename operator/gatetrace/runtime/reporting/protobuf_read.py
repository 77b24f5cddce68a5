"""A bounded protobuf wire reader: the decoding half beside :mod:`.protobuf_wire`.

For messages from clients (the gateway's OTLP receiver), so every bound is checked
before it is trusted: a varint is at most 10 bytes and fits 64 bits, a length never
runs past its message, messages (and groups) nest at most :data:`MAX_DEPTH` deep, field
numbers are 1..2**29-1 and only the six wire types exist. Unknown fields are skipped, as
proto3 says, groups included. Nothing is copied: :func:`fields` walks one message as a
range of the request's bytes and hands out the ranges of its length-delimited fields.

Every malformed input raises :class:`~.protobuf_wire.WireError` naming the byte offset.

Reference: https://protobuf.dev/programming-guides/encoding/
"""

import struct
from collections.abc import Iterator

from gatetrace.runtime.reporting import protobuf_wire as pb

__all__ = [
    "MAX_DEPTH",
    "WireError",
    "double",
    "fields",
    "int64",
    "read_varint",
    "text",
]

WireError = pb.WireError
MAX_DEPTH = 32
"""Messages nested deeper than this are refused (the protobuf libraries allow 100; OTLP's
deepest ordinary message, a span's attribute value, sits at depth 6)."""
_MAX_FIELD = (1 << 29) - 1
_START_GROUP = 3
_END_GROUP = 4
_FIXED_SIZES = {pb.FIXED64: 8, pb.FIXED32: 4}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` (before ``end``) and the position after it."""
    byte = buf[pos] if pos < end else -1
    if 0 <= byte < 0x80:  # one byte: the common case
        return byte, pos + 1
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {start}")
        byte = buf[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise WireError(f"varint at byte {start} overflows 64 bits")
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes, start: int, end: int, depth: int = 0) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(number, wire_type, a, b)`` for each field of the message in ``buf[start:end]``.

    For a varint or fixed field ``a`` is its value (unsigned; see :func:`int64`,
    :func:`double`) and ``b`` is 0; for a length-delimited field ``buf[a:b]`` is its
    payload. Groups are skipped. ``depth`` is the message's nesting depth: pass
    ``depth + 1`` when reading a field's payload as a message.
    """
    if depth > MAX_DEPTH:
        raise WireError(f"messages nested deeper than {MAX_DEPTH} levels at byte {start}")
    if end > len(buf) or start < 0:
        raise WireError(f"message range {start}..{end} outside the {len(buf)}-byte buffer")
    pos = start
    while pos < end:
        key = buf[pos]
        if key < 0x80:  # one-byte keys, lengths and values: read inline (the common case)
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD:
            raise WireError(f"field number {number} out of range at byte {pos}")
        if wire_type == pb.VARINT:
            value, pos = read_varint(buf, pos, end)
            yield number, wire_type, value, 0
        elif wire_type == pb.LEN:
            if pos < end and buf[pos] < 0x80:
                size = buf[pos]
                pos += 1
            else:
                size, pos = read_varint(buf, pos, end)
            if size > end - pos:
                raise WireError(
                    f"field {number}: length {size} at byte {pos} runs past its message"
                )
            yield number, wire_type, pos, pos + size
            pos += size
        elif wire_type == pb.FIXED64:
            if pos + 8 > end:
                raise WireError(f"field {number}: truncated fixed64 at byte {pos}")
            yield number, wire_type, _U64.unpack_from(buf, pos)[0], 0
            pos += 8
        elif wire_type == pb.FIXED32:
            if pos + 4 > end:
                raise WireError(f"field {number}: truncated fixed32 at byte {pos}")
            yield number, wire_type, _U32.unpack_from(buf, pos)[0], 0
            pos += 4
        elif wire_type == _START_GROUP:
            pos = _skip_group(buf, pos, end, number, depth + 1)
        elif wire_type == _END_GROUP:
            raise WireError(f"field {number}: end of a group never started, at byte {pos}")
        else:
            raise WireError(f"field {number}: wire type {wire_type} does not exist, at byte {pos}")


def _skip_group(buf: bytes, pos: int, end: int, number: int, depth: int) -> int:
    """The position after the end-group key matching ``number`` (a deprecated proto2 group:
    unknown to proto3, skipped with its nested fields)."""
    if depth > MAX_DEPTH:
        raise WireError(f"groups nested deeper than {MAX_DEPTH} levels at byte {pos}")
    start = pos
    while pos < end:
        key, after = read_varint(buf, pos, end)
        if key & 7 == _END_GROUP:
            if key >> 3 != number:
                raise WireError(f"group {number} closed as group {key >> 3} at byte {pos}")
            return after
        # one field of the group, read (and checked) by fields() on its own range
        field_end = _field_end(buf, pos, end, depth)
        pos = field_end
    raise WireError(f"group {number} started at byte {start} is never closed")


def _field_end(buf: bytes, pos: int, end: int, depth: int) -> int:
    """The position after the one field starting at ``pos``."""
    key, after = read_varint(buf, pos, end)
    number, wire_type = key >> 3, key & 7
    if number == 0 or number > _MAX_FIELD:
        raise WireError(f"field number {number} out of range at byte {after}")
    if wire_type == _START_GROUP:
        return _skip_group(buf, after, end, number, depth + 1)
    if wire_type == pb.VARINT:
        return read_varint(buf, after, end)[1]
    if wire_type == pb.LEN:
        size, after = read_varint(buf, after, end)
        if size > end - after:
            raise WireError(f"field {number}: length {size} at byte {after} runs past its message")
        return after + size
    fixed = _FIXED_SIZES.get(wire_type)
    if fixed is None:
        raise WireError(f"field {number}: wire type {wire_type} out of place at byte {after}")
    if after + fixed > end:
        raise WireError(f"field {number}: truncated fixed field at byte {after}")
    return after + fixed


def text(buf: bytes, start: int, end: int) -> str:
    """A ``string`` field's payload; proto3 strings must be valid UTF-8."""
    try:
        return buf[start:end].decode()
    except UnicodeDecodeError as e:
        raise WireError(
            f"string at byte {start} is not valid UTF-8 (byte {start + e.start})"
        ) from e


def int64(value: int) -> int:
    """An ``int64`` (or ``sfixed64``) read as unsigned 64 bits, as the signed number it is."""
    return value - (1 << 64) if value >= 1 << 63 else value


def double(value: int) -> float:
    """A ``double`` (a fixed64 field's unsigned value) as the float it encodes."""
    return float(_F64.unpack(_U64.pack(value))[0])
