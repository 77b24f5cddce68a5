"""W3C Baggage: the ``baggage`` header.

Grammar (W3C Baggage §3.2): ``key OWS "=" OWS value *( OWS ";" OWS property )``
members separated by commas, keys RFC 7230 tokens taken literally, values
``baggage-octet`` strings percent-decoded as UTF-8 (see :mod:`.percent`), and
properties (``;k=v`` or ``;flag``) kept, normalised, as the entry's metadata.
Several ``baggage`` headers are combined in order; empty and whitespace-only
members are skipped; a malformed member is dropped alone. A repeated key keeps
its first value.

Limits (:class:`~.base.BaggageLimits`, default 64 members and 8192 bytes, what
the spec says must at least be propagated) apply when reading and when
writing; a member past them is dropped whole, never cut, and counted. Input
longer than four times ``max_bytes`` is only read up to the last whole member
before that point.
"""

import re
from typing import Any

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import percent as _percent

__all__ = ["BaggagePropagator", "parse_member", "parse_properties"]

FORMAT = "baggage"
_HEADER = "baggage"
_OWS = " \t"
_OCTETS = _percent.BAGGAGE_OCTETS
_TOKEN = _percent.TOKEN_CHARS
_decode = _percent.decode
_encode = _percent.encode
_new_tuple = tuple.__new__


def _char_class(chars: frozenset[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


_PLAIN_HEADER = re.compile(
    "{key}+={value}*(?:,{key}+={value}*)*".format(
        key=_char_class(_percent.TOKEN_CHARS - {"%"}),
        value=_char_class(_percent.BAGGAGE_OCTETS - {"%"}),
    )
).fullmatch
"""``k=v,k=v`` with nothing to trim, split off or decode."""
_Entry = _baggage.BaggageEntry


def parse_properties(text: str) -> str | None:
    """Normalise a property list (the text after a value's first ``;``); None if invalid."""
    properties: list[str] = []
    for raw in text.split(";"):
        prop = raw.strip(_OWS)
        if not prop:
            continue
        key, eq, value = prop.partition("=")
        key = key.rstrip(_OWS)
        if not _percent.is_token(key):
            return None
        if eq:
            value = value.lstrip(_OWS)
            if not _OCTETS.issuperset(value):
                return None
            properties.append(f"{key}={value}")
        else:
            properties.append(key)
    return "".join(";" + p for p in properties)


def parse_member(member: str) -> tuple[str, str, str] | None:
    """``(key, decoded value, metadata)`` of one OWS-stripped list member; None if invalid."""
    eq = member.find("=")
    if eq <= 0:
        return None
    key = member[:eq].rstrip(_OWS)
    value = member[eq + 1 :]
    metadata = ""
    semicolon = value.find(";")
    if semicolon >= 0:
        normalised = parse_properties(value[semicolon + 1 :])
        if normalised is None:
            return None
        metadata = normalised
        value = value[:semicolon]
    value = value.strip(_OWS)
    if not key or not _TOKEN.issuperset(key) or not _OCTETS.issuperset(value):
        return None
    return key, (_decode(value) if "%" in value else value), metadata


class BaggagePropagator:
    """Reads and writes the W3C ``baggage`` header; see the module docstring."""

    name = FORMAT
    fields = frozenset((_HEADER,))

    __slots__ = ("_failures", "_limits")

    def __init__(
        self,
        failures: _base.FailureCounter = _base.IGNORE_FAILURES,
        limits: _base.BaggageLimits = _base.DEFAULT_BAGGAGE_LIMITS,
    ) -> None:
        self._failures = failures
        self._limits = limits

    def extract(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        values = getter.get(carrier, _HEADER)
        if not values:
            return found
        text = values[0] if len(values) == 1 else ",".join(values)
        cap = 4 * self._limits.max_bytes
        if len(text) > cap:
            self._failures.failed(FORMAT, "too_long")
            text = text[: text.rfind(",", 0, cap + 1) + 1]
        max_entries, max_bytes = self._limits
        if len(text) <= max_bytes and _PLAIN_HEADER(text):
            # the common shape (no OWS, properties or percent-encoding), read in one go
            members = text.split(",")
            if len(members) <= max_entries:
                plain = {
                    key: _new_tuple(_Entry, (value, ""))
                    for key, _, value in (member.partition("=") for member in members)
                }
                if len(plain) == len(members):  # else a repeated key: counted below
                    merged = found.baggage.merged(_baggage.Baggage(plain))
                    return _base.with_baggage(found, merged)
        entries: dict[str, _baggage.BaggageEntry] = {}
        used = 0
        for raw in text.split(","):
            member = raw.strip(_OWS)
            if not member:
                continue
            parsed = parse_member(member)
            if parsed is None:
                self._failures.failed(FORMAT, "member")
                continue
            key, value, metadata = parsed
            if key in entries:
                self._failures.failed(FORMAT, "duplicate")
                continue
            size = len(member) + (1 if entries else 0)
            if len(entries) >= max_entries or used + size > max_bytes:
                self._failures.failed(FORMAT, "limit")
                continue
            used += size
            entries[key] = _new_tuple(_Entry, (value, metadata))
        if not entries:
            return found
        return _base.with_baggage(found, found.baggage.merged(_baggage.Baggage(entries)))

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        baggage = context.baggage
        if not baggage:
            return
        max_entries, max_bytes = self._limits
        members: list[str] = []
        used = 0
        for key, (text, metadata) in baggage.entries():
            value = _encode(text)
            if (
                value is None
                or not key
                or not _TOKEN.issuperset(key)
                or (metadata and parse_properties(metadata) != metadata)
            ):
                self._failures.failed(FORMAT, "inject_member")
                continue
            member = f"{key}={value}{metadata}"
            size = len(member) + (1 if members else 0)
            if len(members) >= max_entries or used + size > max_bytes:
                self._failures.failed(FORMAT, "limit")
                continue
            used += size
            members.append(member)
        if members:
            setter.set(carrier, _HEADER, ",".join(members))
