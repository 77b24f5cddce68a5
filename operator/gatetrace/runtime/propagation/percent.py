"""Percent-encoding of baggage values, shared by the baggage-carrying formats.

W3C Baggage allows the ``baggage-octet`` set raw (printable US-ASCII but space,
``"``, ``,``, ``;`` and ``\\``) and percent-encodes the UTF-8 bytes of anything
else. We also encode ``%`` (so decoding is unambiguous) and ``+`` (so peers that
decode with ``unquote_plus``, as OpenTelemetry does, read the same value).
Decoding replaces byte sequences that are not UTF-8 with U+FFFD, as the spec says.
"""

import urllib.parse

__all__ = ["BAGGAGE_OCTETS", "TOKEN_CHARS", "decode", "encode", "is_token"]

BAGGAGE_OCTETS = frozenset(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
"""Characters a W3C baggage value may hold unencoded."""

_SAFE = "".join(sorted(BAGGAGE_OCTETS - {"%", "+"}))
_SAFE_SET = frozenset(_SAFE)

TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
"""RFC 7230 ``tchar``: what header names and W3C baggage keys are made of."""


def is_token(text: str) -> bool:
    """True for a non-empty RFC 7230 token."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


def encode(value: str) -> str | None:
    """The wire form of ``value``; None if it cannot be encoded (lone surrogates)."""
    if _SAFE_SET.issuperset(value):
        return value
    try:
        return urllib.parse.quote(value, safe=_SAFE, encoding="utf-8", errors="strict")
    except UnicodeEncodeError:
        return None


def decode(text: str) -> str:
    """Undo :func:`encode`; ``%`` not followed by two hex digits stays as it is."""
    if "%" not in text:
        return text
    return urllib.parse.unquote(text, encoding="utf-8", errors="replace")
