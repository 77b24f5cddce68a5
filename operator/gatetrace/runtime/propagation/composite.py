"""Several formats as one propagator, built from a configured extract order and inject set.

Extraction runs the formats in order, each enriching what the previous ones
found: the first format that yields a span context wins, baggage from all
of them is merged (earlier formats win on a repeated key) and, at the end,
attached to the context. Injection writes every inject format. A format
that raises (a bug, or a carrier whose getter fails) is counted as
``internal_error`` and skipped: propagation never breaks a request.
"""

import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gatetrace.runtime import baggage as _baggage_values
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import b3 as _b3
from gatetrace.runtime.propagation import b3multi as _b3multi
from gatetrace.runtime.propagation import baggage as _baggage
from gatetrace.runtime.propagation import base as _base
from gatetrace.runtime.propagation import jaeger as _jaeger
from gatetrace.runtime.propagation import tracecontext as _tracecontext
from gatetrace.runtime.propagation import xtrace as _xtrace

__all__ = ["FORMATS", "CompositePropagator", "Factory", "build_propagator"]

Factory = Callable[[_base.FailureCounter, _base.BaggageLimits], _base.Propagator]
"""Builds one format's propagator from a failure counter and baggage limits."""

FORMATS: Mapping[str, Factory] = types.MappingProxyType(
    {
        "tracecontext": lambda failures, limits: _tracecontext.TraceContextPropagator(failures),
        "baggage": _baggage.BaggagePropagator,
        "b3": lambda failures, limits: _b3.B3Propagator(failures),
        "b3multi": lambda failures, limits: _b3multi.B3MultiPropagator(failures),
        "jaeger": _jaeger.JaegerPropagator,
        "xtrace": _xtrace.XTracePropagator,
    }
)
"""Every format name a config may use, in documentation order (read-only)."""


class CompositePropagator:
    """Extracts with ``extractors`` in order and injects with every one of ``injectors``."""

    name = "composite"

    __slots__ = ("_failures", "_injectors_without_baggage", "extractors", "fields", "injectors")

    def __init__(
        self,
        extractors: Sequence[_base.Propagator],
        injectors: Sequence[_base.Propagator],
        failures: _base.FailureCounter = _base.IGNORE_FAILURES,
    ) -> None:
        self.extractors = tuple(extractors)
        self.injectors = tuple(injectors)
        self._injectors_without_baggage = tuple(p for p in self.injectors if p.name != "baggage")
        """What a context without baggage needs: the W3C baggage format writes nothing
        then (measured: its call was a tenth of an unsampled request's tracing cost)."""
        self._failures = failures
        self.fields = frozenset().union(*(p.fields for p in (*self.extractors, *self.injectors)))

    def extract(
        self, carrier: Any, getter: _base.Getter, found: _base.Extracted = _base.EMPTY
    ) -> _base.Extracted:
        for propagator in self.extractors:
            try:
                found = propagator.extract(carrier, getter, found)
            except Exception:  # a format bug must not fail the request; count it instead
                self._failures.failed(propagator.name, "internal_error")
        if found is _base.EMPTY:  # nothing found (the common new trace): nothing to join
            return found
        context, baggage, format_name, sampled, debug = found
        if context is not None and baggage and context.baggage is not baggage:
            context = _base.context_with_baggage(context, baggage)
            return _base.Extracted(context, baggage, format_name, sampled, debug)
        return found

    def inject(self, context: _sc.SpanContext, carrier: Any, setter: _base.Setter) -> None:
        baggage = context.baggage
        # the shared empty baggage by identity first: Baggage.__len__ is a Python call
        if baggage is _NO_BAGGAGE or not baggage:
            injectors = self._injectors_without_baggage
        else:
            injectors = self.injectors
        for propagator in injectors:
            try:
                propagator.inject(context, carrier, setter)
            except Exception:  # as in extract: count, never raise into the request
                self._failures.failed(propagator.name, "internal_error")


_NO_BAGGAGE = _baggage_values.EMPTY_BAGGAGE


def _names(kind: str, names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"propagation.{kind} must be a list of format names, not a string")
    unique: list[str] = []
    for name in names:
        if name not in FORMATS:
            known = ", ".join(FORMATS)
            raise ValueError(f"propagation.{kind}: unknown format {name!r} (known: {known})")
        if name not in unique:
            unique.append(name)
    return unique


def build_propagator(
    extract: Sequence[str],
    inject: Sequence[str],
    failures: _base.FailureCounter | None = None,
    *,
    baggage_limits: _base.BaggageLimits = _base.DEFAULT_BAGGAGE_LIMITS,
) -> CompositePropagator:
    """The composite for a config's ``propagation: {extract: [...], inject: [...]}``.

    Raises ValueError naming an unknown format. A format in both lists is built once.
    """
    counter = failures if failures is not None else _base.IGNORE_FAILURES
    extract_names = _names("extract", extract)
    inject_names = _names("inject", inject)
    built = {
        name: FORMATS[name](counter, baggage_limits)
        for name in dict.fromkeys([*extract_names, *inject_names])
    }
    return CompositePropagator(
        [built[n] for n in extract_names], [built[n] for n in inject_names], counter
    )
