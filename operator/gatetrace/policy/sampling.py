"""The ``spec.sampling`` models: samplers, rules, error/latency priority, namespace limits.

A sampler is a tagged union on ``type``; it is *atomic* for merging: a policy
that sets a sampler replaces the inherited one whole (two sampler types share
no fields).  Defaults are safe: parent-based probabilistic sampling at 1%.
"""

import typing
from typing import Annotated, Any, Literal, Self

import pydantic

from gatetrace.policy import wire

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]


class ConstSampler(wire.WireModel):
    """Always (decision=true) or never (decision=false) sample."""

    type: Literal["const"] = "const"
    """Sampler type: const."""
    decision: bool
    """const: true samples every trace, false none."""


class ProbabilisticSampler(wire.WireModel):
    """Sample a fixed fraction of traces, decided from the trace id so every hop agrees."""

    type: Literal["probabilistic"] = "probabilistic"
    """Sampler type: probabilistic."""
    rate: wire.Rate
    """probabilistic: fraction of traces sampled, in [0, 1]."""


class RateLimitingSampler(wire.WireModel):
    """Sample at most a number of traces per second (token bucket)."""

    type: Literal["rateLimiting"] = "rateLimiting"
    """Sampler type: rateLimiting."""
    traces_per_second: wire.PerSecond
    """rateLimiting: maximum sampled traces per second (per pod or per gateway: see
    ``rateScope``), > 0."""


class AdaptiveSampler(wire.WireModel):
    """Adjust a probability so the sampled traces per second approach a target."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "!has(self.minRate) || !has(self.maxRate) || self.minRate <= self.maxRate",
                "minRate must not be above maxRate",
            )
        )
    )

    type: Literal["adaptive"] = "adaptive"
    """Sampler type: adaptive."""
    target_traces_per_second: wire.PerSecond
    """adaptive: sampled traces per second to aim for (per pod or per gateway: see
    ``rateScope``), > 0."""
    min_rate: wire.Rate = 0.001
    """adaptive: lowest probability the sampler may use. Default 0.001."""
    max_rate: wire.Rate = 1.0
    """adaptive: highest probability the sampler may use. Default 1."""

    @pydantic.model_validator(mode="after")
    def _min_below_max(self) -> Self:
        if self.min_rate > self.max_rate:
            raise ValueError(f"minRate {self.min_rate} is above maxRate {self.max_rate}")
        return self


class PerOperationSampler(wire.WireModel):
    """Jaeger-style per-operation probabilities with a guaranteed lower bound per operation."""

    type: Literal["perOperation"] = "perOperation"
    """Sampler type: perOperation."""
    default_rate: wire.Rate
    """perOperation: probability for each operation, in [0, 1]."""
    lower_bound_traces_per_second: Annotated[
        float, pydantic.Field(ge=0.0, le=1_000_000.0), wire.TRACES_PER_SECOND
    ] = 0.0
    """perOperation: traces per second guaranteed to every operation (per pod or per
    gateway: see ``rateScope``). Default 0."""
    max_operations: Annotated[int, pydantic.Field(ge=1, le=100_000)] = 2000
    """perOperation: operations tracked before the rest share the default. Default 2000."""


Sampler = Annotated[
    ConstSampler
    | ProbabilisticSampler
    | RateLimitingSampler
    | AdaptiveSampler
    | PerOperationSampler,
    pydantic.Field(discriminator="type"),
]
"""Any sampler, selected by its ``type``."""


class RuleMatch(wire.WireModel):
    """Which requests a sampling rule applies to; every field set must match."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "has(self.pathPrefix) || has(self.methods) || has(self.headers)",
                "match must set at least one of pathPrefix, methods, headers",
            )
        )
    )

    path_prefix: (
        Annotated[str, pydantic.Field(min_length=1, max_length=1024, pattern=r"^/")] | None
    ) = None
    """Request path prefix, starting with '/'."""
    methods: (
        Annotated[
            list[HttpMethod],
            pydantic.Field(min_length=1, max_length=9, json_schema_extra=wire.LIST_SET),
        ]
        | None
    ) = None
    """HTTP methods (upper case); any of them matches."""
    headers: (
        Annotated[dict[wire.HeaderName, wire.MatchHeaderValue], pydantic.Field(max_length=16)]
        | None
    ) = None
    """Request headers that must be present with exactly these values."""

    @pydantic.model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.path_prefix is None and not self.methods and not self.headers:
            raise ValueError("match must set at least one of pathPrefix, methods, headers")
        if self.methods is not None and len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods has duplicates: {self.methods}")
        return self


class SamplingRule(wire.WireModel):
    """A sampler used for requests matching ``match``; the first matching rule wins."""

    match: RuleMatch
    """Which requests the rule applies to."""
    sampler: Sampler
    """The sampler for matching requests."""


class Prioritize(wire.WireModel):
    """Keep traces the sampler dropped when they failed or were slow, within a budget."""

    errors: bool = True
    """Keep traces whose response was 5xx or whose upstream failed. Default true."""
    slower_than_ms: Annotated[int, pydantic.Field(ge=1, le=3_600_000)] | None = None
    """Keep traces slower than this many milliseconds; unset keeps none for latency."""
    max_per_second: wire.PerSecond = 10.0
    """Budget: at most this many prioritized traces per second (per pod or per gateway: see
    ``rateScope``). Default 10."""


class NamespaceOverrideLimits(wire.WireModel):
    """How far policies of other namespaces may change sampling of traffic routed to them."""

    allowed: bool = False
    """Whether namespace overrides apply at all. Default false."""
    max_rate: wire.Rate = 1.0
    """Probabilities an override sets are clamped to this. Default 1."""
    max_traces_per_second: wire.PerSecond | None = None
    """Traces per second an override sets are clamped to this; also caps its traffic (per
    pod or per gateway: see ``rateScope``)."""


def _default_sampler() -> ProbabilisticSampler:
    return ProbabilisticSampler(rate=0.01)


class SamplingOverride(wire.WireModel):
    """The sampling fields a namespace override may set; unset (null) fields inherit."""

    sampler: Sampler | None = None
    """The sampler for traffic routed to the namespace."""
    parent_based: bool | None = None
    """Honour the upstream sampled flag."""
    rules: Annotated[list[SamplingRule], pydantic.Field(max_length=64)] | None = None
    """Sampling rules (replace the gateway's)."""
    prioritize: Prioritize | None = None
    """Error/latency priority (replaces the gateway's)."""
    max_traces_per_second: wire.PerSecond | None = None
    """Traces per second cap for traffic routed to the namespace."""


class Sampling(wire.WireModel):
    """How the gateway decides which traces to record."""

    sampler: Sampler = pydantic.Field(default_factory=_default_sampler)
    """The sampler used when no rule matches. Default probabilistic, rate 0.01."""
    parent_based: bool = True
    """Honour the sampled flag of an incoming trace context. Default true."""
    rules: Annotated[list[SamplingRule], pydantic.Field(max_length=64)] = pydantic.Field(
        default_factory=list
    )
    """Per-request samplers; the first rule whose match fits the request wins."""
    prioritize: Prioritize | None = None
    """Keep failed or slow requests' traces beyond the sampler; unset disables it."""
    max_traces_per_second: wire.PerSecond | None = None
    """Cap on sampled traces per second (per pod or per gateway: see ``rateScope``); unset
    means no cap."""
    namespace_overrides: NamespaceOverrideLimits = pydantic.Field(
        default_factory=NamespaceOverrideLimits
    )
    """Limits on sampling overrides set by policies of the namespaces traffic is routed to."""
    debug: Literal["trusted", "capped", "ignore"] = "capped"
    """What a client's debug flag (B3 ``d`` / ``X-B3-Flags: 1``, ``jaeger-debug-id``, the
    Jaeger debug bit) gets it: ``capped`` (default) samples the trace if the
    ``maxTracesPerSecond`` cap has room, counting against it like any other; ``trusted``
    samples past the cap when the request comes from a ``trustedProxies`` address (others
    as ``capped``); ``ignore`` leaves the decision to the sampler, as for a request that made
    no decision (the "accept" a debug flag implies is ignored too). Counted in
    ``gatetrace_sampling_debug_decisions_total``."""
    rate_scope: Literal["pod", "gateway"] = "pod"
    """What every traces-per-second field of the sampling config counts: ``pod`` (each
    gateway pod on its own: three replicas sample up to three times as much) or
    ``gateway`` (the gateway's Ready pods together: the operator gives each pod an equal
    share, rounded to 6 decimals, and re-divides whenever pods come and go). A gateway given
    a config directly, without the operator, counts per pod. Default pod."""


def _marked(annotation: Any, unit: wire.Unit) -> bool:
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return any(m is unit for m in metadata) or _marked(base, unit)
    return any(_marked(arg, unit) for arg in typing.get_args(annotation))


def _models(annotation: Any) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def fields_in(unit: wire.Unit, *roots: type[pydantic.BaseModel]) -> frozenset[str]:
    """Wire names of every field, in ``roots`` and the models they nest, whose type is
    marked with ``unit``: derived from the models, so a new field cannot be forgotten."""
    found: set[str] = set()
    seen: set[type[pydantic.BaseModel]] = set()
    todo = list(roots)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            wire_name = info.alias or name
            if any(m is unit for m in info.metadata) or _marked(info.annotation, unit):
                found.add(wire_name)
            todo.extend(_models(info.annotation))
    return frozenset(found)


def rate_keys() -> frozenset[str]:
    """Wire names of the traces/s fields of ``spec.sampling`` (and namespace overrides)."""
    return fields_in(wire.TRACES_PER_SECOND, Sampling, SamplingOverride)


def sampler_fields(unit: wire.Unit) -> frozenset[str]:
    """Wire names of the fields of any sampler type whose type is marked with ``unit``."""
    return fields_in(unit, *_models(Sampler))
