"""Debug flags: what a caller's request to force sampling is worth.

The propagation formats set ``SpanContext.debug`` from B3's ``d`` /
``X-B3-Flags: 1``, Jaeger's flag bit 2 or ``jaeger-debug-id``. Any client can
send them, so they are not a way around the gateway's traces/s cap unless the
gateway is told to trust them. :class:`DebugSampler` wraps the whole sampler
chain and applies one of three modes:

``capped`` (the default)
    a debug request is sampled if the gateway-wide cap has a token for it
    (it counts against the cap like any other trace), and, for traffic routed
    to a namespace override with its own ``maxTracesPerSecond``, that cap too;
    else dropped (reason ``cap``), or, with error/latency priority configured
    (``budget``), recorded so an error or a slow response may still keep it
    within the priority budget, as for any trace the cap dropped.
``trusted``
    as ``capped``, except that a request whose socket peer is one of the
    gateway's trusted proxies (``RequestInfo.trusted``) is sampled past the caps.
``ignore``
    debug flags count for nothing, nor does the "accept" every format reads
    into them (B3 ``d``, Jaeger's flags ``3``): the wrapped chain decides as
    for a request that made no sampling decision.

Each debug decision is counted by outcome (``kept``, ``trusted``, ``capped``,
``ignored``). Forced traces do not consult the wrapped sampler, so debug
traffic does not drain its rate limiters.
"""

from typing import Literal

from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["DEBUG_MODES", "DebugMode", "DebugSampler"]

DebugMode = Literal["trusted", "capped", "ignore"]
DEBUG_MODES: tuple[DebugMode, ...] = ("trusted", "capped", "ignore")

_FORCED = _base.SamplingResult(_base.Decision.SAMPLE, "debug", True, "debug")
_CAPPED = _base.SamplingResult(_base.Decision.DROP, "debug", True, "cap")


class DebugSampler:
    """Applies the debug ``mode`` to requests whose remote parent asks for debug; ``inner``
    decides the rest. ``cap`` is the traces/s bucket the chain's cap draws from, or the
    buckets (a namespace override's own and the gateway's) that must each grant a token;
    None or empty: no cap."""

    __slots__ = ("_capped", "_counter", "caps", "forced", "inner", "mode")

    def __init__(
        self,
        inner: _base.Sampler,
        mode: DebugMode = "capped",
        *,
        cap: _tb.TokenBucket | tuple[_tb.TokenBucket, ...] | None = None,
        budget: _span.UpgradeBudget | None = None,
        registry: _metrics.Registry | None = None,
    ) -> None:
        if mode not in DEBUG_MODES:
            raise ValueError(f"debug must be one of {', '.join(DEBUG_MODES)}, got {mode!r}")
        self.inner = inner
        self.mode = mode
        self.caps: tuple[_tb.TokenBucket, ...] = (
            () if cap is None else cap if isinstance(cap, tuple) else (cap,)
        )
        self._capped = (
            _CAPPED
            if budget is None
            else _CAPPED._replace(decision=_base.Decision.RECORD_ONLY, budget=budget)
        )
        """What a debug request the cap refuses gets; ``budget``: the priority budget."""
        self.forced = 0
        """How many traces a debug flag forced."""
        registry = registry if registry is not None else _metrics.Registry()
        self._counter = registry.counter(
            "gatetrace_sampling_debug_decisions",
            "Requests carrying a debug flag, by what the flag got them "
            "(kept, trusted: sampled; capped: dropped by the cap; ignored: the sampler decided).",
            ("decision",),
        )

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        _, _, _, parent, _ = params  # unpacked: a field read is a generic attribute lookup
        if parent is not None and parent.debug:
            return self._debug(params)
        try:  # as _base.decide, inlined: this wraps every root decision
            return self.inner.should_sample(params)
        except Exception:
            return _base.SAMPLER_ERROR

    def _debug(self, params: _base.SamplingParams) -> _base.SamplingResult:
        mode = self.mode
        if mode == "ignore":
            self._counter.inc(("ignored",))
            assert params.parent is not None
            # neither the flag nor the "accept" every format reads into it counts
            undecided = params.parent._replace(debug=False, sampled=None)
            return _base.decide(self.inner, params._replace(parent=undecided))
        if mode == "trusted" and params.request is not None and params.request.trusted:
            self._counter.inc(("trusted",))
            self.forced += 1
            return _FORCED
        if not self.caps or _tb.acquire_all(self.caps):
            self._counter.inc(("kept",))
            self.forced += 1
            return _FORCED
        self._counter.inc(("capped",))
        return self._capped

    def describe(self) -> str:
        return f"debug[{self.mode}]({self.inner.describe()})"
