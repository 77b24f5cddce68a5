"""Trace and span ids: 128-bit trace ids, 64-bit span ids, never zero.

Ids are plain ``int`` inside the runtime (cheap to create, compare and hash)
and lowercase, zero-padded hex on the wire. ``random.getrandbits`` is used on
purpose: ids must be unique, not secret, and the module's generator is
re-seeded after ``fork``.
"""

import random

__all__ = [
    "INVALID_SPAN_ID",
    "INVALID_TRACE_ID",
    "format_span_id",
    "format_trace_id",
    "new_span_id",
    "new_trace_id",
    "parse_span_id",
    "parse_trace_id",
]

INVALID_TRACE_ID = 0
INVALID_SPAN_ID = 0
_MAX_TRACE_ID = (1 << 128) - 1
_MAX_SPAN_ID = (1 << 64) - 1
_HEX = frozenset("0123456789abcdefABCDEF")

_getrandbits = random.getrandbits


def new_trace_id() -> int:
    """Return a random, non-zero 128-bit trace id."""
    trace_id = _getrandbits(128)
    while not trace_id:  # one chance in 2**128, but "never zero" is a promise
        trace_id = _getrandbits(128)
    return trace_id


def new_span_id() -> int:
    """Return a random, non-zero 64-bit span id."""
    span_id = _getrandbits(64)
    while not span_id:
        span_id = _getrandbits(64)
    return span_id


def format_trace_id(trace_id: int) -> str:
    """32 lowercase hex digits."""
    return "%032x" % trace_id  # noqa: UP031 (measured faster than the f-string)


def format_span_id(span_id: int) -> str:
    """16 lowercase hex digits."""
    return "%016x" % span_id  # noqa: UP031


def _parse_hex(text: str, max_digits: int) -> int | None:
    if not text or len(text) > max_digits or not _HEX.issuperset(text):
        return None
    return int(text, 16)


def parse_trace_id(text: str) -> int | None:
    """Parse 1-32 hex digits (16-digit ids are valid, as in B3/Jaeger); None if invalid or zero."""
    value = _parse_hex(text, 32)
    return value if value else None


def parse_span_id(text: str) -> int | None:
    """Parse 1-16 hex digits; None if invalid or zero."""
    value = _parse_hex(text, 16)
    return value if value else None
