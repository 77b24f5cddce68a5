"""Baggage: the immutable key/value set that travels with a trace.

The value object only; wire formats (W3C ``baggage``, ``uberctx-*``,
``X-Baggage-*``) live in :mod:`gatetrace.runtime.propagation`.
"""

from collections.abc import Iterator, Mapping
from typing import NamedTuple

__all__ = ["EMPTY_BAGGAGE", "Baggage", "BaggageEntry"]


class BaggageEntry(NamedTuple):
    """One member: its value and the raw W3C property list (``;k=v;flag``), if any."""

    value: str
    metadata: str = ""


class Baggage(Mapping[str, str]):
    """An immutable, ordered mapping of baggage keys to values (with metadata)."""

    __slots__ = ("_entries",)

    _entries: dict[str, BaggageEntry]

    def __init__(self, entries: Mapping[str, BaggageEntry] | None = None) -> None:
        self._entries = dict(entries) if entries else {}

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> "Baggage":
        return cls({k: BaggageEntry(v) for k, v in values.items()})

    def __getitem__(self, key: str) -> str:
        return self._entries[key].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Baggage({ {k: e.value for k, e in self._entries.items()}!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Baggage):
            return self._entries == other._entries
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._entries.items()))

    def entry(self, key: str) -> BaggageEntry | None:
        return self._entries.get(key)

    def entries(self) -> Iterator[tuple[str, BaggageEntry]]:
        return iter(self._entries.items())

    def with_entry(self, key: str, value: str, metadata: str = "") -> "Baggage":
        """A copy with ``key`` set (replacing any earlier value, keeping its position)."""
        entries = dict(self._entries)
        entries[key] = BaggageEntry(value, metadata)
        return Baggage(entries)

    def without(self, key: str) -> "Baggage":
        if key not in self._entries:
            return self
        entries = dict(self._entries)
        del entries[key]
        return Baggage(entries)

    def merged(self, other: "Baggage") -> "Baggage":
        """A copy holding our entries, then those of ``other`` whose keys we lack."""
        if not other:
            return self
        if not self._entries:
            return other
        entries = dict(self._entries)
        for key, entry in other._entries.items():
            entries.setdefault(key, entry)
        return Baggage(entries)


EMPTY_BAGGAGE = Baggage()
