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
    "DEFAULT_BAGGAGE_LIMITS",
    "EMPTY",
    "IGNORE_FAILURES",
    "PARSE_BAGGAGE_LIMITS",
    "BaggageLimits",
    "DictGetter",
    "DictSetter",
    "Extracted",
    "FailureCounter",
    "Getter",
    "MultiDictGetter",
    "Propagator",
    "Setter",
    "adopt",
    "context_with_baggage",
    "with_baggage",
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
        found: tuple[str, ...] = ()
        for name in carrier:  # a plain loop: cheapest when, as usual, nothing matches
            if name.lower() == lowered:
                found = (*found, carrier[name])
        return found

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
    sampled: bool | None = None
    """An upstream decision that arrived *without* ids (``b3: 0``, a lone ``X-B3-Sampled``,
    ``jaeger-debug-id``); None when there was none. A sampler may honour it."""
    debug: bool = False
    """Forced sampling requested without ids (``b3: d``, ``jaeger-debug-id``)."""


EMPTY = Extracted()


def adopt(found: Extracted, context: _sc.SpanContext, fmt: str) -> Extracted:
    """``found`` with ``context`` from format ``fmt``, unless a valid context is already there.

    A context without ids (a ``jaeger-debug-id`` container) yields to a later valid
    one, which inherits its debug request and debug id.
    """
    previous = found.context
    if previous is not None:
        if previous.trace_id:
            return found
        context = context._replace(debug=True, debug_id=previous.debug_id)
    return _new_tuple(Extracted, (context, found.baggage, fmt, found.sampled, found.debug))


# NamedTuple ``_replace`` and even the positional constructor run Python-level code;
# these helpers build the tuples directly (tests check them against ``_replace``).
_new_tuple = tuple.__new__
_BAGGAGE_AT = _sc.SpanContext._fields.index("baggage")


def with_baggage(found: Extracted, baggage: _baggage.Baggage) -> Extracted:
    """``found._replace(baggage=baggage)``, cheaper."""
    return _new_tuple(Extracted, (found.context, baggage, found.format, found.sampled, found.debug))


def context_with_baggage(context: _sc.SpanContext, baggage: _baggage.Baggage) -> _sc.SpanContext:
    """``context._replace(baggage=baggage)``, cheaper."""
    return _new_tuple(
        _sc.SpanContext, (*context[:_BAGGAGE_AT], baggage, *context[_BAGGAGE_AT + 1 :])
    )


class BaggageLimits(NamedTuple):
    """How much baggage a format reads or writes; W3C asks for at least 64 members
    and 8192 bytes, and never a partial member. Members past a limit are dropped
    whole and counted (reason ``limit``)."""

    max_entries: int = 64
    max_bytes: int = 8192


DEFAULT_BAGGAGE_LIMITS = BaggageLimits()

PARSE_BAGGAGE_LIMITS = BaggageLimits(max_entries=1024, max_bytes=65536)
"""The fixed bound a gateway's propagators read and write baggage within: it only
protects the parsers (the largest limits a config may set). The configured
``maxEntries``/``maxBytes`` count what survives allow/deny (:mod:`..baggage_rules`)."""


class FailureCounter(Protocol):
    """Counts rejected headers: ``failed(format, reason)``, e.g. ``("tracecontext", "version")``."""

    def failed(self, fmt: str, reason: str) -> None: ...


class _IgnoreFailures:
    __slots__ = ()

    def failed(self, fmt: str, reason: str) -> None:
        pass


IGNORE_FAILURES: FailureCounter = _IgnoreFailures()
"""A counter that counts nothing, for callers that do not want metrics."""


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
