"""Baggage rules: which incoming baggage entries a gateway keeps and forwards.

Baggage arriving from a client is untrusted: a caller may send thousands of
entries or megabytes of text hoping the gateway copies them into every
upstream request. :class:`BaggageRules` (the gateway's ``state.BaggageFilter``)
keeps only allowed, non-denied keys and cuts what survives to ``max_entries``
entries and ``max_bytes`` bytes in the W3C ``baggage`` serialisation, in the
order the entries arrived (the propagators read with a larger, fixed parse
bound, so denied or unknown entries never crowd out allowed ones). Every
dropped entry is counted by reason in ``gatetrace_baggage_dropped{reason}``,
those past the parse bound too (``parse_limit``, through :class:`ParseLimitDrops`).

Keys are compared the way the formats that carry them read them: W3C baggage
keys are case-sensitive, but Jaeger's ``uberctx-{key}`` and the legacy
``X-Baggage-{key}`` are header names, which peers read case-insensitively.
``deny`` therefore always matches regardless of letter case; with
``case_insensitive`` (a case-insensitive format is configured) ``allow`` does
too, and of keys differing only in case the first is kept (reason
``duplicate``): downstream they would be one key.
"""

from collections.abc import Iterable
from typing import Final

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import metrics
from gatetrace.runtime.propagation import base as _propagation

__all__ = ["ALLOW_ALL", "BAGGAGE_FORMATS", "BaggageRules", "ParseLimitDrops"]

BAGGAGE_FORMATS: Final = frozenset({"baggage", "jaeger", "xtrace"})
"""The propagation formats that carry baggage entries (and drop them at their bound)."""

ALLOW_ALL: Final = "*"
"""An ``allow`` member that allows every key that is not denied."""

_DENIED = ("denied",)
_NOT_ALLOWED = ("not_allowed",)
_MAX_ENTRIES = ("max_entries",)
_MAX_BYTES = ("max_bytes",)
_DUPLICATE = ("duplicate",)
_PARSE_LIMIT = ("parse_limit",)


def _dropped_counter(registry: metrics.Registry) -> metrics.Counter:
    return registry.counter(
        "gatetrace_baggage_dropped", "Baggage entries dropped by the gateway", ["reason"]
    )


class ParseLimitDrops:
    """A propagation failure counter that also counts, as baggage drops with reason
    ``parse_limit``, the entries a baggage-carrying format left out at its fixed bound
    (its ``limit`` failures); every failure still reaches ``inner``."""

    __slots__ = ("_dropped", "inner")

    def __init__(self, inner: _propagation.FailureCounter, registry: metrics.Registry) -> None:
        self.inner = inner
        self._dropped = _dropped_counter(registry)

    def failed(self, fmt: str, reason: str) -> None:
        if reason == "limit" and fmt in BAGGAGE_FORMATS:
            self._dropped.inc(_PARSE_LIMIT)
        self.inner.failed(fmt, reason)


def _utf8_length(text: str) -> int:
    # ``surrogatepass``: values read from raw header bytes (aiohttp decodes them with
    # ``surrogateescape``) may hold lone surrogates; sizing them must not raise.
    return len(text.encode("utf-8", "surrogatepass"))


def _wire_size(key: str, entry: _baggage.BaggageEntry) -> int:
    """Bytes of ``key=value[;metadata]`` (UTF-8; percent-encoding may add more on the wire)."""
    size = _utf8_length(key) + 1 + _utf8_length(entry.value)
    if entry.metadata:
        size += 1 + _utf8_length(entry.metadata)
    return size


class BaggageRules:
    """Filters baggage: allow/deny by exact key, then entry and byte limits.

    ``allow`` empty (or containing ``"*"``) allows every key not in ``deny``.
    Entries are considered in order; one that would exceed ``max_bytes`` (counting
    the ``,`` separators) is dropped and later, smaller ones may still fit.
    """

    __slots__ = (
        "_allow",
        "_allow_all",
        "_deny",
        "_dropped",
        "case_insensitive",
        "max_bytes",
        "max_entries",
    )

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        max_entries: int = 64,
        max_bytes: int = 8192,
        case_insensitive: bool = False,
        registry: metrics.Registry | None = None,
    ) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        allowed = frozenset(allow)
        self._allow_all = not allowed or ALLOW_ALL in allowed
        self.case_insensitive = case_insensitive
        self._allow = frozenset(k.lower() if case_insensitive else k for k in allowed - {ALLOW_ALL})
        self._deny = frozenset(k.lower() for k in deny)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        registry = registry if registry is not None else metrics.Registry()
        self._dropped = _dropped_counter(registry)

    @property
    def allow(self) -> frozenset[str]:
        """The explicitly allowed keys (empty when every key is allowed)."""
        return frozenset() if self._allow_all else self._allow

    @property
    def deny(self) -> frozenset[str]:
        return self._deny

    def allows(self, key: str) -> bool:
        """Whether the key passes the allow/deny lists (limits aside)."""
        lower = key.lower()
        if lower in self._deny:
            return False
        return self._allow_all or (lower if self.case_insensitive else key) in self._allow

    def apply(self, baggage: _baggage.Baggage) -> _baggage.Baggage:
        """The entries of ``baggage`` that pass the rules, in their original order."""
        if not baggage:
            return baggage
        kept: dict[str, _baggage.BaggageEntry] = {}
        seen: set[str] = set()
        used = 0
        changed = False
        dropped = self._dropped
        max_entries, max_bytes = self.max_entries, self.max_bytes
        deny, allow, allow_all = self._deny, self._allow, self._allow_all
        folding = self.case_insensitive
        for key, entry in baggage.entries():
            lower = key.lower()
            if lower in deny:
                dropped.inc(_DENIED)
                changed = True
                continue
            if not allow_all and (lower if folding else key) not in allow:
                dropped.inc(_NOT_ALLOWED)
                changed = True
                continue
            if folding:
                if lower in seen:
                    dropped.inc(_DUPLICATE)
                    changed = True
                    continue
                seen.add(lower)
            if len(kept) >= max_entries:
                dropped.inc(_MAX_ENTRIES)
                changed = True
                continue
            size = _wire_size(key, entry) + (1 if kept else 0)
            if used + size > max_bytes:
                dropped.inc(_MAX_BYTES)
                changed = True
                continue
            used += size
            kept[key] = entry
        if not changed:
            return baggage
        return _baggage.Baggage(kept) if kept else _baggage.EMPTY_BAGGAGE

    def dropped(self, reason: str) -> float:
        """How many entries were dropped for ``reason`` (denied, not_allowed, duplicate,
        max_entries, max_bytes, parse_limit)."""
        return self._dropped.value((reason,))

    def __repr__(self) -> str:
        allow = "*" if self._allow_all else sorted(self._allow)
        return (
            f"BaggageRules(allow={allow}, deny={sorted(self._deny)}, "
            f"max_entries={self.max_entries}, max_bytes={self.max_bytes}, "
            f"case_insensitive={self.case_insensitive})"
        )
