"""The live tracing state of a gateway or a service using the kit, swapped atomically by
the admin API.

A request reads :attr:`TracingHolder.current` once, at its start, and uses
that :class:`ActiveTracing` (tracer, propagator, baggage rules, samplers)
until it ends: a config swap never mixes two configs within one request.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatetrace.embed import retro_settings as _retro
from gatetrace.policy import build as _build
from gatetrace.runtime import span as _span
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.sampling import base as _sampling

__all__ = [
    "ActiveTracing",
    "BaggageFilter",
    "Closable",
    "InFlight",
    "PrioritySettings",
    "TracingHolder",
]


class Closable(Protocol):
    """A reporter pipeline the swap flushes and closes after the new one is live."""

    async def shutdown(self, timeout: float) -> None: ...


class BaggageFilter(Protocol):
    """Applies the config's baggage rules (allow/deny, limits, tag promotion)."""

    def apply(self, baggage: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class PrioritySettings:
    """Error/latency priority: when a RECORD_ONLY trace is upgraded at finish."""

    errors: bool = False
    """Upgrade on 5xx responses and upstream failures."""
    slower_than_ns: int | None = None
    """Upgrade when the server span took longer than this."""
    budget: _span.UpgradeBudget | None = field(default=None, compare=False)
    """The priority budget (``maxPerSecond``): what a service's own keep of a retro-buffered
    trace draws from (a gateway's upgrades draw through their pending group)."""


class InFlight:
    """How many requests that started under one tracing config are still running: the
    config's reporters are retired only once the last of them has ended (its spans
    are in by then)."""

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def idle(self) -> None:
        """Returns once no request of this config is running."""
        while self.count > 0:
            self._idle = asyncio.Event()
            await self._idle.wait()


@dataclass(frozen=True, slots=True)
class ActiveTracing:
    """Everything the proxy needs for one tracing config, built in one piece."""

    revision: int
    version: str
    tracer: _tracer.Tracer
    propagator: _propagation.Propagator
    baggage: BaggageFilter
    priority: PrioritySettings = PrioritySettings()
    namespace_samplers: Mapping[str, _sampling.Sampler] = field(default_factory=dict)
    """Sampler for traffic routed to services in a namespace (allowed overrides, clamped)."""
    header_tags: tuple[tuple[str, str], ...] = ()
    """(request header, tag) pairs copied onto the server span."""
    baggage_tag_keys: frozenset[str] = frozenset()
    """Baggage keys promoted to span tags."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The effective config document as applied (unredacted; redact before showing)."""
    sources: Sequence[Mapping[str, Any]] = ()
    reporters: Sequence[Closable] = ()
    applied_at: float = field(default_factory=time.time)
    namespace_priority: Mapping[str, PrioritySettings] = field(default_factory=dict)
    """Priority settings for traffic routed to a namespace whose override sets its own
    ``prioritize`` (others use :attr:`priority`)."""
    inflight: InFlight = field(default_factory=InFlight, compare=False)
    """Requests running under this config (see :meth:`TracingHolder.swap`)."""
    retro: _retro.RetroSettings = field(default_factory=_retro.RetroSettings)
    """Retroactive collection (``spec.retro``); off unless a config turns it on."""

    @classmethod
    def from_parts(
        cls,
        parts: _build.RuntimeParts,
        *,
        revision: int,
        config: Mapping[str, Any],
        sources: Sequence[Mapping[str, Any]] = (),
        retro: _retro.RetroSettings | None = None,
    ) -> "ActiveTracing":
        """What requests read from one built config: the only place a
        :class:`~gatetrace.policy.build.RuntimeParts` becomes an ActiveTracing
        (``tests/test_one_source.py`` checks every part is carried or named as consumed)."""
        return cls(
            revision=revision,
            version=parts.version,
            tracer=parts.tracer,
            propagator=parts.propagator,
            baggage=parts.baggage,
            priority=PrioritySettings(
                errors=parts.prioritize_errors,
                slower_than_ns=parts.slower_than_ns,
                budget=parts.priority_budget,
            ),
            namespace_priority={
                namespace: PrioritySettings(
                    errors=p is not None and p.errors,
                    slower_than_ns=_build.slower_than_ns(p),
                )
                for namespace, p in parts.namespace_prioritize.items()
            },
            namespace_samplers=parts.namespace_samplers,
            header_tags=parts.header_tags,
            baggage_tag_keys=parts.baggage_tag_keys,
            config=config,
            sources=tuple(sources),
            reporters=tuple(parts.processors),
            retro=retro if retro is not None else _retro.RetroSettings(),
        )

    def sampler_for(self, namespace: str | None) -> _sampling.Sampler | None:
        """The override sampler for a route's upstream namespace, or None for the default."""
        if namespace is None:
            return None
        return self.namespace_samplers.get(namespace)

    def priority_for(self, namespace: str | None) -> PrioritySettings:
        """The priority settings for a route's upstream namespace (default: :attr:`priority`)."""
        if namespace is None:
            return self.priority
        return self.namespace_priority.get(namespace, self.priority)


class TracingHolder:
    """Holds the current :class:`ActiveTracing`; ``None`` until a config is loaded."""

    __slots__ = ("_current", "_lock")

    def __init__(self, initial: ActiveTracing | None = None) -> None:
        self._current = initial
        self._lock = asyncio.Lock()

    @property
    def current(self) -> ActiveTracing | None:
        return self._current

    @property
    def lock(self) -> asyncio.Lock:
        """Held by whoever validates and swaps, so revision checks and swaps are atomic."""
        return self._lock

    def swap(self, new: ActiveTracing) -> ActiveTracing | None:
        """Install ``new`` (one reference assignment) and return the old state to close."""
        old, self._current = self._current, new
        return old
