"""Baggage carried one header per key (``uberctx-{key}``, ``X-Baggage-{key}``).

Shared by :mod:`.jaeger` and :mod:`.xtrace` through :class:`PrefixedBaggageFormat`,
which leaves only the span context headers to them. Header names are
case-insensitive, so keys are read in lowercase; values use the :mod:`.percent`
encoding (which URL-decoding peers read back). The :class:`~.base.BaggageLimits`
apply, with a member's size counted as in a W3C ``baggage`` header (``key=value``
plus a comma).
"""

from typing import Any

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import percent as _percent

__all__ = ["PrefixedBaggageFormat", "extract", "inject"]

_OWS = " \t"


def extract(
    carrier: Any,
    getter: _base.Getter,
    found: _base.Extracted,
    prefix: str,
    limits: _base.BaggageLimits,
    failures: _base.FailureCounter,
    fmt: str,
) -> _base.Extracted:
    """``found`` with the baggage of every ``{prefix}{key}`` header merged in."""
    entries: dict[str, _baggage.BaggageEntry] = {}
    used = 0
    start = len(prefix)
    max_entries, max_bytes = limits
    for name in getter.keys(carrier):
        lowered = name.lower()
        if not lowered.startswith(prefix) or lowered[start:] in entries:
            continue
        key = lowered[start:]
        raw = getter.get(carrier, name)
        value = raw[0].strip(_OWS) if len(raw) == 1 else None
        if value is None or not _percent.is_token(key) or len(value) > max_bytes:
            failures.failed(fmt, "baggage")
            continue
        size = len(key) + len(value) + (2 if entries else 1)
        if len(entries) >= max_entries or used + size > max_bytes:
            failures.failed(fmt, "limit")
            continue
        used += size
        entries[key] = _baggage.BaggageEntry(_percent.decode(value))
    if not entries:
        return found
    return _base.with_baggage(found, found.baggage.merged(_baggage.Baggage(entries)))


def inject(
    baggage: _baggage.Baggage,
    carrier: Any,
    setter: _base.Setter,
    prefix: str,
    limits: _base.BaggageLimits,
    failures: _base.FailureCounter,
    fmt: str,
) -> None:
    """Write one ``{prefix}{key}`` header per entry that is valid and within the limits."""
    max_entries, max_bytes = limits
    used = count = 0
    for key, entry in baggage.entries():
        value = _percent.encode(entry.value)
        if value is None or not _percent.is_token(key):
            failures.failed(fmt, "inject_member")
            continue
        size = len(key) + len(value) + (2 if count else 1)
        if count >= max_entries or used + size > max_bytes:
            failures.failed(fmt, "limit")
            continue
        used += size
        count += 1
        setter.set(carrier, prefix + key, value)


class PrefixedBaggageFormat:
    """A :class:`~.base.Propagator` whose baggage travels as ``{prefix}{key}`` headers.

    Subclasses name the format (``name``) and the prefixes, and implement
    :meth:`_extract_context` and :meth:`_inject_context` for their span context
    headers; baggage is read and written here, within ``limits``, and counted
    under the format's name.
    """

    __slots__ = ("_failures", "_limits")

    name: str
    read_prefix: str
    """The baggage headers' prefix in lowercase, as they are matched."""
    write_prefix: str
    """The prefix written (the format's customary spelling)."""

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
        found = extract(
            carrier, getter, found, self.read_prefix, self._limits, self._failures, self.name
        )
        previous = found.context
        if previous is not None and previous.trace_id:
            return found  # an earlier format supplied the context: only baggage is merged
        return self._extract_context(carrier, getter, found)

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        self._inject_context(context, carrier, setter)
        baggage = context.baggage
        if baggage:
            inject(
                baggage, carrier, setter, self.write_prefix, self._limits, self._failures, self.name
            )

    def _extract_context(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted
    ) -> _base.Extracted:
        """``found`` with this format's span context, when ``found`` has none with ids yet."""
        raise NotImplementedError

    def _inject_context(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        """Write this format's span context headers (not the baggage)."""
        raise NotImplementedError
