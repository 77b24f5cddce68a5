"""The W3C ``tracestate`` list: grammar, parsing and truncation (Trace Context §3.3).

Parsing is all or nothing, as the spec's test suite expects at its strict
level: several headers are combined in order, empty and whitespace-only list
members are skipped, OWS (spaces and tabs) around members is ignored, and a
single bad key or value, a duplicated key or more than 32 members discards the
whole tracestate (the traceparent is kept). Formatting drops members that are
not valid, repeats of a key and members past 32, then truncates to
``max_chars`` the way §3.3.1.5 says: members longer than 128 characters
first, starting from the right, then members from the right.
"""

from collections.abc import Sequence

from gatetrace.runtime import spancontext as _sc

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MAX_HEADER_CHARS",
    "MAX_MEMBERS",
    "format_members",
    "is_valid_key",
    "is_valid_value",
    "parse",
]

MAX_MEMBERS = 32
MAX_HEADER_CHARS = MAX_MEMBERS * (256 + 1 + 256) + (MAX_MEMBERS - 1) * 4
"""The longest legal combined value (32 members of 513 chars) plus some OWS slack;
anything longer is rejected before it is split."""
DEFAULT_MAX_CHARS = 512
"""What we send at most: the spec asks vendors to propagate at least 512 characters."""
_LARGE_MEMBER = 128

_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_LCALPHA_DIGIT = _LCALPHA | frozenset("0123456789")
_KEY_CHARS = _LCALPHA_DIGIT | frozenset("_-*/")
_VALUE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {",", "="}
_OWS = " \t"


def is_valid_key(key: str) -> bool:
    """``simple-key`` or ``tenant-id@system-id`` (multi-tenant) of the spec's grammar."""
    at = key.find("@")
    if at < 0:
        return 0 < len(key) <= 256 and key[0] in _LCALPHA and _KEY_CHARS.issuperset(key)
    tenant, system = key[:at], key[at + 1 :]
    return (
        0 < len(tenant) <= 241
        and 0 < len(system) <= 14
        and tenant[0] in _LCALPHA_DIGIT
        and system[0] in _LCALPHA
        and _KEY_CHARS.issuperset(tenant)
        and _KEY_CHARS.issuperset(system)
    )


def is_valid_value(value: str) -> bool:
    """1-256 printable ASCII characters but ``,`` and ``=``, not ending in a space."""
    return 0 < len(value) <= 256 and value[-1] != " " and _VALUE_CHARS.issuperset(value)


def parse(values: Sequence[str]) -> tuple[_sc.TraceState, str]:
    """Combine ``tracestate`` header values; ``(members, "")`` or ``((), reason)``."""
    total = 0
    for value in values:
        total += len(value) + 1
    if total > MAX_HEADER_CHARS:
        return (), "tracestate_too_long"
    text = values[0] if len(values) == 1 else ",".join(values)
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in text.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        if len(members) == MAX_MEMBERS:
            return (), "tracestate_members"
        key, eq, value = member.partition("=")
        if not eq or not is_valid_key(key) or not is_valid_value(value):
            return (), "tracestate_member"
        if key in seen:
            return (), "tracestate_duplicate"
        seen.add(key)
        members.append((key, value))
    return tuple(members), ""


def format_members(members: _sc.TraceState, max_chars: int = DEFAULT_MAX_CHARS) -> tuple[str, bool]:
    """The header value for ``members`` and whether anything had to be left out."""
    kept: list[str] = []
    seen: set[str] = set()
    dropped = False
    for key, value in members:
        if (
            len(kept) == MAX_MEMBERS
            or not isinstance(key, str)  # typed as str, but a caller's bug must not raise here
            or not isinstance(value, str)
            or key in seen
            or not is_valid_key(key)
            or not is_valid_value(value)
        ):
            dropped = True
            continue
        seen.add(key)
        kept.append(f"{key}={value}")
    length = sum(len(m) for m in kept) + len(kept) - 1
    if length > max_chars:
        dropped = True
        for index in range(len(kept) - 1, -1, -1):
            if len(kept[index]) > _LARGE_MEMBER:
                length -= len(kept.pop(index)) + 1
                if length <= max_chars:
                    break
        while kept and length > max_chars:
            length -= len(kept.pop()) + 1
    return ",".join(kept), dropped
