"""Percent-encoding of baggage values, shared by the baggage-carrying formats.

W3C Baggage allows the ``baggage-octet`` set raw (printable US-ASCII but space,
``"``, ``,``, ``;`` and ``\\``) and percent-encodes the UTF-8 bytes of anything
else. We also encode ``%`` (so decoding is unambiguous) and ``+`` (so peers that
decode with ``unquote_plus``, as OpenTelemetry does, read the same value).
Decoding replaces byte sequences that are not UTF-8 with U+FFFD, as the spec says,
whether they arrive percent-encoded or raw.
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


def _repair(text: str) -> str:
    """``text`` with the lone surrogates that stand for raw non-UTF-8 bytes (aiohttp
    decodes header values with ``surrogateescape``) decoded as UTF-8, U+FFFD where invalid."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates no byte decoding produced (a str carrier's)
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def decode(text: str) -> str:
    """Undo :func:`encode`; ``%`` not followed by two hex digits stays as it is.

    The result is always valid Unicode: raw bytes that are not UTF-8 become U+FFFD
    like percent-encoded ones."""
    if not text.isascii():
        text = _repair(text)
    if "%" not in text:
        return text
    return urllib.parse.unquote(text, encoding="utf-8", errors="replace")
