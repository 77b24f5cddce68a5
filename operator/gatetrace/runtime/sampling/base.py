"""The sampler interface: one decision method, as OpenTelemetry's ``sampling.py``.

A sampler sees the trace id, the operation, the span kind, the extracted
(remote) parent context if any and, for the gateway's server spans, the
request; it answers with a :class:`SamplingResult`.
"""

import enum
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _sc

__all__ = [
    "SAMPLER_ERROR",
    "Decision",
    "RequestInfo",
    "Sampler",
    "SamplingParams",
    "SamplingResult",
    "decide",
]


class Decision(enum.IntEnum):
    DROP = 0
    """Neither recorded nor exported; the context still propagates (sampled=0)."""
    RECORD_ONLY = 1
    """Recorded but not exported unless a priority upgrade (error, slow) claims it."""
    SAMPLE = 2
    """Recorded and exported; propagated with sampled=1."""


class RequestInfo(NamedTuple):
    """What rule-based samplers may look at. ``headers`` must be case-insensitive
    (aiohttp's ``CIMultiDictProxy``) or use lowercase keys. A NamedTuple: one is
    built for every request the gateway sees, sampled or not."""

    method: str
    path: str
    headers: Mapping[str, str]
    route: str = ""
    trusted: bool = False
    """The socket peer is a trusted proxy (set only for requests with a debug flag)."""


class SamplingParams(NamedTuple):
    trace_id: int
    operation: str
    kind: _span.SpanKind
    parent: _sc.SpanContext | None
    """The remote parent (extracted from the carrier), or None for a new trace."""
    request: RequestInfo | None = None


class SamplingResult(NamedTuple):
    decision: Decision
    sampler_type: str
    """Recorded on sampled root spans as ``sampler.type`` (as Jaeger clients do)."""
    sampler_param: _span.TagValue
    """Recorded as ``sampler.param`` (the rate, the traces/s, the decision...)."""
    reason: str = ""
    """Why (``rate``, ``parent``, ``debug``, ``rule:payments``, ``cap``...): counted in metrics."""
    budget: _span.UpgradeBudget | None = None
    """For RECORD_ONLY: the budget that priority upgrades of this trace draw from."""

    @property
    def sampled(self) -> bool:
        return self.decision is Decision.SAMPLE


class Sampler(Protocol):
    """Decides whether a new (local-root) span is sampled. Must never raise."""

    def should_sample(self, params: SamplingParams) -> SamplingResult: ...

    def describe(self) -> str:
        """A short human description, e.g. ``probabilistic(rate=0.1)``."""
        ...


SAMPLER_ERROR = SamplingResult(Decision.DROP, "error", 0, "sampler_error")
"""What a sampler that raised is taken to have answered: drop (counted by reason)."""


def decide(sampler: Sampler, params: SamplingParams) -> SamplingResult:
    """Ask ``sampler``; a bug in it (an exception) becomes :data:`SAMPLER_ERROR`.

    Composite samplers call their parts through this, so a faulty part never
    raises out of the composite.
    """
    try:
        return sampler.should_sample(params)
    except Exception:
        return SAMPLER_ERROR
