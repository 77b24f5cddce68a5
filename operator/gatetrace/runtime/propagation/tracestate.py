"""The W3C ``tracestate`` list: grammar, parsing and truncation (Trace Context Level 2).

Keys follow the Level 2 grammar, ``key = ( lcalpha / DIGIT ) 0*255 ( keychar )``
with ``keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"``: a key starts
with a lowercase letter or a digit, may hold ``@`` anywhere after that (``foo@``,
``foo@@bar``, a 241-character tenant before ``@``...), 256 characters in all.
Values are 1-256 printable ASCII characters but ``,`` and ``=``, not ending in a
space (``value = 0*255(chr) nblk-chr``); leading spaces belong to the value.

Parsing: several headers are combined in order (RFC 9110 §5.3), empty and
whitespace-only list members are allowed and skipped, OWS (spaces and tabs)
around members is ignored. A duplicated key does not discard the header: the
first member of each key is kept (the spec lets a vendor discard duplicates).
A bad key or value, or more than 32 list members, discards the whole tracestate
(the traceparent is kept), as the spec's test suite expects at its strict level.
Formatting drops members that are not valid, repeats of a key and members past
32, then truncates to ``max_chars`` (at least the 512 the spec asks vendors to
propagate) the way Level 2 says: whole entries only, those longer than 128
characters first, starting from the right, then entries from the right.

Mutating (a vendor's own entry): :func:`set_member` puts ``key=value`` at the
front, whether new or updated, removes any other member of that key and, past
32 members, the right-most; :func:`delete_member` removes a key. Other members
keep their order. Both take and return the immutable members tuple.
"""

from collections.abc import Sequence

from gatetrace.runtime import spancontext as _sc

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MAX_HEADER_CHARS",
    "MAX_MEMBERS",
    "InvalidMemberError",
    "delete_member",
    "format_members",
    "is_valid_key",
    "is_valid_value",
    "parse",
    "set_member",
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
_KEY_CHARS = _LCALPHA_DIGIT | frozenset("_-*/@")
_MAX_KEY = 256
_VALUE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {",", "="}
_OWS = " \t"
_ECHO_LIMIT = 40


class InvalidMemberError(ValueError):
    """A member our own code tries to set breaks the Level 2 grammar (a bug, not input)."""


def _echo(text: str) -> str:
    # runtime may not import gatetrace.policy.messages: the same bounded echo, for str only
    if len(text) <= _ECHO_LIMIT:
        return repr(text)
    return f"{text[:_ECHO_LIMIT]!r}... ({len(text)} characters)"


def is_valid_key(key: str) -> bool:
    """A Level 2 key: a lowercase letter or digit, then up to 255 of ``a-z0-9_-*/@``."""
    return 0 < len(key) <= _MAX_KEY and key[0] in _LCALPHA_DIGIT and _KEY_CHARS.issuperset(key)


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
    count = 0
    for raw in text.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        count += 1
        if count > MAX_MEMBERS:
            return (), "tracestate_members"
        key, eq, value = member.partition("=")
        if not eq or not is_valid_key(key) or not is_valid_value(value):
            return (), "tracestate_member"
        if key in seen:
            continue  # the first member of a key wins
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


def set_member(members: _sc.TraceState, key: str, value: str) -> _sc.TraceState:
    """``members`` with ``key=value`` first (added, or updated and moved to the front)."""
    if not is_valid_key(key):
        raise InvalidMemberError(
            f"tracestate key {_echo(key)}: must begin with a lowercase letter or a digit"
            " and hold at most 256 characters of a-z 0-9 _ - * / @"
        )
    if not is_valid_value(value):
        raise InvalidMemberError(
            f"tracestate value for {_echo(key)}: {_echo(value)} must be 1-256 printable"
            " ASCII characters but ',' and '=', not ending in a space"
        )
    others = [member for member in members if member[0] != key]
    del others[MAX_MEMBERS - 1 :]  # adding past 32 drops the right-most
    return ((key, value), *others)


def delete_member(members: _sc.TraceState, key: str) -> _sc.TraceState:
    """``members`` without any member of ``key``, the others in their order."""
    return tuple(member for member in members if member[0] != key)
