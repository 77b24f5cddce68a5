"""Thrift COMPACT protocol primitives for hand-written encoders of fixed structs.

thriftpy2's generic pure-Python compact protocol walks ``thrift_spec`` for
every value; an encoder for a handful of fixed structs (:mod:`.jaeger_compact`)
is much faster writing bytes directly with these primitives. :class:`Layout`
computes field header bytes from the structs thriftpy2 loaded from an IDL and
checks each field's type, so the IDL and an encoder cannot drift apart
silently.

Rules used: a field header is one byte ``(id delta << 4) | type`` when the
delta is 1..15; bool fields carry their value in the header type (1 true,
2 false); list headers are ``(size << 4) | element type`` below 15 elements,
else ``0xF0 | type`` and a varint size; i32/i64 are zigzag varints; doubles
are 8 bytes little-endian; strings are a varint length and UTF-8 bytes;
structs end with a 0 byte.
"""

from typing import Any

__all__ = [
    "COMPACT_TYPES",
    "C_FALSE",
    "C_STRUCT",
    "C_TRUE",
    "MAX_LIST_HEADER",
    "MAX_VARINT64",
    "PROTOCOL_ID",
    "TTYPE_BOOL",
    "TTYPE_DOUBLE",
    "TTYPE_I32",
    "TTYPE_I64",
    "TTYPE_LIST",
    "TTYPE_STRING",
    "TTYPE_STRUCT",
    "VERSION_ONEWAY",
    "Layout",
    "put_id",
    "put_list_header",
    "put_varint",
    "varint",
    "zigzag",
]

# thrift TType (as thriftpy2 reports it) -> compact protocol type nibble
TTYPE_BOOL, TTYPE_DOUBLE, TTYPE_I32, TTYPE_I64 = 2, 4, 8, 10
TTYPE_STRING, TTYPE_STRUCT, TTYPE_LIST = 11, 12, 15
COMPACT_TYPES = {
    TTYPE_DOUBLE: 7,
    TTYPE_I32: 5,
    TTYPE_I64: 6,
    TTYPE_STRING: 8,
    TTYPE_STRUCT: 12,
    TTYPE_LIST: 9,
}
C_TRUE, C_FALSE, C_STRUCT = 1, 2, 12

PROTOCOL_ID = 0x82
VERSION_ONEWAY = 0x01 | (4 << 5)  # compact version 1, message type ONEWAY (4)
MAX_LIST_HEADER = 1 + 5
"""Bytes of the longest list header (the short form, or 0xF_ and a 32-bit varint size)."""
MAX_VARINT64 = 10


def put_varint(out: bytearray, value: int) -> None:
    """Append the varint of a non-negative ``value``."""
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def varint(value: int) -> bytes:
    out = bytearray()
    put_varint(out, value)
    return bytes(out)


def zigzag(value: int) -> int:
    """The zigzag form of a signed 64-bit ``value``."""
    return (value << 1) ^ (value >> 63)


def put_id(out: bytearray, value: int) -> None:
    """An unsigned 64-bit id as a zigzag varint of the signed i64 it travels as."""
    value &= 0xFFFFFFFFFFFFFFFF
    value = (value << 1) if value < 0x8000000000000000 else ((1 << 65) - 1 - (value << 1))
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def put_list_header(out: bytearray, size: int, element: int = C_STRUCT) -> None:
    """The header of a list of ``size`` elements of compact type ``element``."""
    if size < 15:
        out.append((size << 4) | element)
    else:
        out.append(0xF0 | element)
        put_varint(out, size)


class Layout:
    """Field headers of the structs of ``module`` (thriftpy2), from their ``thrift_spec``."""

    def __init__(self, module: Any, idl: str) -> None:
        self.module = module
        self.idl = idl
        """The IDL file's name, for error messages."""

    def field(self, struct_name: str, name: str, ttype: int) -> int:
        spec = getattr(self.module, struct_name).thrift_spec
        for fid, entry in spec.items():
            if entry[1] == name:
                if entry[0] != ttype:
                    raise TypeError(f"{self.idl}: {struct_name}.{name} is not of type {ttype}")
                return int(fid)
        raise LookupError(f"{self.idl}: {struct_name} has no field {name!r}")

    def header(self, struct_name: str, prev: str | None, name: str, ttype: int) -> int:
        """The header byte of field ``name`` written right after field ``prev`` (None: first).

        For a bool field this is the header of the value ``true``; ``false`` is one more.
        """
        fid = self.field(struct_name, name, ttype)
        if prev is None:
            prev_id = 0
        else:
            spec = getattr(self.module, struct_name).thrift_spec
            prev_id = next(int(i) for i, entry in spec.items() if entry[1] == prev)
        delta = fid - prev_id
        if not 0 < delta <= 15:
            raise ValueError(f"{self.idl}: {struct_name}.{name} needs a long field header")
        return (delta << 4) | (C_TRUE if ttype == TTYPE_BOOL else COMPACT_TYPES[ttype])
