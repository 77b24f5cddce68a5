"""Propagation formats: extract a span context and baggage from headers, inject them back.

One module per wire format (:mod:`.tracecontext`, :mod:`.baggage`, :mod:`.b3`,
:mod:`.b3multi`, :mod:`.jaeger`, :mod:`.xtrace`), each a small object following
the :class:`~.base.Propagator` protocol, combined by :mod:`.composite` from a
configured extract order and inject set. A malformed header never raises and
never propagates: it is treated as absent (or the bad member dropped) and
counted by format and reason (:mod:`.failures`). Standard library only.
"""

from gatetrace.runtime.propagation.b3 import B3Propagator
from gatetrace.runtime.propagation.b3multi import B3MultiPropagator
from gatetrace.runtime.propagation.baggage import BaggagePropagator
from gatetrace.runtime.propagation.base import (
    DEFAULT_BAGGAGE_LIMITS,
    EMPTY,
    IGNORE_FAILURES,
    BaggageLimits,
    DictGetter,
    DictSetter,
    Extracted,
    FailureCounter,
    Getter,
    MultiDictGetter,
    Propagator,
    Setter,
)
from gatetrace.runtime.propagation.composite import FORMATS, CompositePropagator, build_propagator
from gatetrace.runtime.propagation.failures import MetricsFailureCounter
from gatetrace.runtime.propagation.jaeger import JaegerPropagator
from gatetrace.runtime.propagation.tracecontext import TraceContextPropagator
from gatetrace.runtime.propagation.xtrace import XTracePropagator

__all__ = [
    "DEFAULT_BAGGAGE_LIMITS",
    "EMPTY",
    "FORMATS",
    "IGNORE_FAILURES",
    "B3MultiPropagator",
    "B3Propagator",
    "BaggageLimits",
    "BaggagePropagator",
    "CompositePropagator",
    "DictGetter",
    "DictSetter",
    "Extracted",
    "FailureCounter",
    "Getter",
    "JaegerPropagator",
    "MetricsFailureCounter",
    "MultiDictGetter",
    "Propagator",
    "Setter",
    "TraceContextPropagator",
    "XTracePropagator",
    "build_propagator",
]
