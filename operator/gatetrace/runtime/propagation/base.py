"""The propagator interface: extract a context from a carrier, inject one into it.

Parameterised by getter/setter (OpenTelemetry's ``textmap.py`` idea) so the
same code reads aiohttp's multi-valued, case-insensitive headers and plain
dicts. A malformed header never raises: the format's context is treated as
absent (or the bad member dropped) and the rejection is counted.
"""

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple, Protocol

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc

__all__ = [
    "EMPTY",
    "DictGetter",
    "DictSetter",
    "Extracted",
    "FailureCounter",
    "Getter",
    "MultiDictGetter",
    "Propagator",
    "Setter",
]


class Getter(Protocol):
    def get(self, carrier: Any, key: str) -> Sequence[str]:
        """Every value of header ``key`` (case-insensitive), in order; empty if absent."""
        ...

    def keys(self, carrier: Any) -> Iterable[str]:
        """Every header name present (for prefixed families like ``uberctx-``)."""
        ...


class Setter(Protocol):
    def set(self, carrier: Any, key: str, value: str) -> None: ...


class DictGetter:
    """For ``Mapping[str, str]`` carriers; names compared case-insensitively."""

    def get(self, carrier: Mapping[str, str], key: str) -> Sequence[str]:
        value = carrier.get(key)
        if value is not None:
            return (value,)
        lowered = key.lower()
        return tuple(v for k, v in carrier.items() if k.lower() == lowered)

    def keys(self, carrier: Mapping[str, str]) -> Iterable[str]:
        return carrier.keys()


class MultiDictGetter:
    """For multidict/aiohttp header objects (``getall``, case-insensitive)."""

    def get(self, carrier: Any, key: str) -> Sequence[str]:
        values: Sequence[str] = carrier.getall(key, ())
        return values

    def keys(self, carrier: Any) -> Iterable[str]:
        keys: Iterable[str] = carrier.keys()
        return keys


class DictSetter:
    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        carrier[key] = value


class Extracted(NamedTuple):
    """What extraction found: a span context (or None) and baggage (possibly empty)."""

    context: _sc.SpanContext | None = None
    baggage: _baggage.Baggage = _baggage.EMPTY_BAGGAGE
    format: str = ""
    """The name of the format that supplied ``context``."""


EMPTY = Extracted()


class FailureCounter(Protocol):
    """Counts rejected headers: ``failed(format, reason)``, e.g. ``("tracecontext", "version")``."""

    def failed(self, fmt: str, reason: str) -> None: ...


class Propagator(Protocol):
    name: str
    """The format name used in configs: tracecontext, baggage, b3, b3multi, jaeger, xtrace."""
    fields: frozenset[str]
    """Lowercase header names (or prefixes ending in ``-``) it reads and writes."""

    def extract(self, carrier: Any, getter: Getter, found: Extracted) -> Extracted:
        """Return ``found`` enriched with what this format carries. Never raises.

        Formats carrying a span context leave ``found.context`` alone when it is
        already set (the first format in the extract order wins); baggage is merged.
        """
        ...

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: Setter) -> None:
        """Write this format's headers for ``context`` (including its baggage)."""
        ...
