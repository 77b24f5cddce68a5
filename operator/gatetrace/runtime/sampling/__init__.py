"""Samplers: small objects with one ``should_sample`` method (see :mod:`.base`).

One module per idea: :mod:`.const`, :mod:`.probabilistic`, :mod:`.ratelimiting`,
:mod:`.adaptive`, :mod:`.peroperation`, :mod:`.parentbased`, :mod:`.rules`,
:mod:`.cap`, :mod:`.debug`, :mod:`.priority`, with the shared
:mod:`.tokenbucket`. Every answer carries ``sampler_type``, ``sampler_param``
(recorded on the root span as ``sampler.type``/``sampler.param``) and a
``reason`` (counted in the decision metrics).

A typical gateway chain, outermost first::

    DebugSampler(
        PrioritySampler(
            CappedSampler(
                ParentBasedSampler(RuleBasedSampler(rules, default=ProbabilisticSampler(0.01))),
                max_traces_per_second=500,
            ),
            PriorityBudget(20),
        )
    )

Samplers never raise from ``should_sample`` (composites guard their parts with
:func:`.base.decide`); constructors validate their settings and raise
``ValueError``/``TypeError`` naming the field. They keep small mutable state
(token buckets, counters) without locks: on one asyncio event loop a decision
runs uninterrupted; from several threads a race can only miscount a token.
"""

from gatetrace.runtime.sampling.adaptive import AdaptiveSampler
from gatetrace.runtime.sampling.base import (
    Decision,
    RequestInfo,
    Sampler,
    SamplingParams,
    SamplingResult,
    decide,
)
from gatetrace.runtime.sampling.cap import CappedSampler
from gatetrace.runtime.sampling.const import ConstSampler
from gatetrace.runtime.sampling.debug import DebugSampler
from gatetrace.runtime.sampling.parentbased import ParentBasedSampler
from gatetrace.runtime.sampling.peroperation import PerOperationSampler
from gatetrace.runtime.sampling.priority import PriorityBudget, PrioritySampler
from gatetrace.runtime.sampling.probabilistic import ProbabilisticSampler
from gatetrace.runtime.sampling.ratelimiting import RateLimitingSampler
from gatetrace.runtime.sampling.rules import RuleBasedSampler, RuleMatch, SamplingRule
from gatetrace.runtime.sampling.tokenbucket import Clock, TokenBucket

__all__ = [
    "AdaptiveSampler",
    "CappedSampler",
    "Clock",
    "ConstSampler",
    "DebugSampler",
    "Decision",
    "ParentBasedSampler",
    "PerOperationSampler",
    "PriorityBudget",
    "PrioritySampler",
    "ProbabilisticSampler",
    "RateLimitingSampler",
    "RequestInfo",
    "RuleBasedSampler",
    "RuleMatch",
    "Sampler",
    "SamplingParams",
    "SamplingResult",
    "SamplingRule",
    "TokenBucket",
    "decide",
]
