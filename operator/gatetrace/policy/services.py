"""Sampling for the services behind the gateway (``spec.services``), served to their SDKs
through the Jaeger remote sampling protocol.

A service's SDK (OpenTelemetry's ``jaegerremote`` sampler in Go, Java, JS; Jaeger clients)
polls ``GET /sampling?service=NAME`` on the operator, which answers from the
TracingPolicies it holds: per service a sampler (probabilistic or rate limiting) and
per-operation probabilities, as Jaeger's ``SamplingStrategyResponse``.

Precedence: a service named by the cluster default (the policy without selector in the
operator's root namespace) is overridden by any other policy naming it; among those, the
oldest wins (``creationTimestamp``, then namespace/name) and the others are Conflicted.
A service no policy names gets the cluster default's gateway sampler (probabilistic rate,
rate limiting traces/s, const as 0 or 1, others their base probability).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import pydantic

from gatetrace.policy import sampling as _sampling
from gatetrace.policy import wire

if TYPE_CHECKING:
    from gatetrace.policy import model as _model

__all__ = [
    "MAX_SERVICE_NAME",
    "OperationStrategy",
    "ServiceSampling",
    "StrategyBook",
    "StrategySource",
    "source_from_spec",
    "source_of",
    "strategy_response",
]

MAX_SERVICE_NAME: Final = 256
"""Longest service name a policy names or a poller may ask for."""

DEFAULT_PROBABILITY: Final = 0.001
"""Jaeger's default: what services get when nothing at all says otherwise."""


class ServiceProbabilistic(wire.WireModel):
    """Sample this fraction of the service's new traces."""

    type: Literal["probabilistic"] = "probabilistic"
    rate: wire.Rate
    """Probability 0..1."""


class ServiceRateLimiting(wire.WireModel):
    """Sample at most this many of the service's new traces per second (per SDK instance)."""

    type: Literal["rateLimiting"] = "rateLimiting"
    traces_per_second: Annotated[int, pydantic.Field(ge=0, le=32_767)]
    """Whole traces per second (Jaeger's protocol carries an integer)."""


ServiceSampler = Annotated[
    ServiceProbabilistic | ServiceRateLimiting, pydantic.Field(discriminator="type")
]


class OperationStrategy(wire.WireModel):
    """A probability for one operation (span name) of the service."""

    operation: Annotated[str, pydantic.Field(min_length=1, max_length=MAX_SERVICE_NAME)]
    """The operation (root span name), e.g. ``GET /health``."""
    probability: wire.Rate
    """Probability 0..1 for that operation."""


class ServiceSampling(wire.WireModel):
    """The sampling strategy one service's SDKs poll for."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "!has(self.operations) || size(self.operations) == 0 "
                "|| (has(self.sampler) && self.sampler.type == 'probabilistic')",
                "operations need a probabilistic sampler",
            )
        )
    )

    name: Annotated[str, pydantic.Field(min_length=1, max_length=MAX_SERVICE_NAME)]
    """The service name its SDK reports (``service.name``)."""
    sampler: ServiceSampler
    """The service's sampler: probabilistic (``rate``) or rateLimiting (``tracesPerSecond``)."""
    operations: Annotated[
        list[OperationStrategy],
        pydantic.Field(
            max_length=256,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["operation"],
            },
        ),
    ] = pydantic.Field(default_factory=list)
    """Per-operation probabilities (only with a probabilistic sampler: Jaeger's per-operation
    strategies are probabilistic)."""
    default_lower_bound_traces_per_second: Annotated[
        float, pydantic.Field(ge=0.0, le=1_000_000.0)
    ] = 0.0
    """With ``operations``: every operation is sampled at least this often. Default 0."""

    @pydantic.model_validator(mode="after")
    def _operations_need_probabilities(self) -> "ServiceSampling":
        if self.operations and self.sampler.type != "probabilistic":
            raise ValueError(
                "operations need a probabilistic sampler (Jaeger's per-operation "
                "strategies are probabilistic)"
            )
        names = [o.operation for o in self.operations]
        if len(set(names)) != len(names):
            raise ValueError("operations: an operation is listed twice")
        return self


def _distinct_names(entries: list[ServiceSampling]) -> list[ServiceSampling]:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"service {entry.name!r} is listed twice")
        seen.add(entry.name)
    return entries


SERVICES_FIELD = Annotated[
    list[ServiceSampling],
    pydantic.AfterValidator(_distinct_names),
    pydantic.Field(
        max_length=512,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    ),
]


def _num(value: float) -> float | int:
    """Whole numbers as JSON integers (``0``, ``1``), as Jaeger (Go) writes them."""
    return int(value) if float(value).is_integer() else value


def strategy_response(entry: ServiceSampling) -> dict[str, Any]:
    """Jaeger's ``SamplingStrategyResponse`` JSON for ``entry``, as Jaeger serves it
    (``strategyType`` 0 probabilistic, 1 rate limiting)."""
    sampler = entry.sampler
    if isinstance(sampler, ServiceRateLimiting):
        return {
            "strategyType": 1,
            "rateLimitingSampling": {"maxTracesPerSecond": sampler.traces_per_second},
        }
    rate = _num(sampler.rate)
    body: dict[str, Any] = {"strategyType": 0, "probabilisticSampling": {"samplingRate": rate}}
    if entry.operations:
        body["operationSampling"] = {
            "defaultSamplingProbability": rate,
            "defaultLowerBoundTracesPerSecond": _num(entry.default_lower_bound_traces_per_second),
            "perOperationStrategies": [
                {
                    "operation": o.operation,
                    "probabilisticSampling": {"samplingRate": _num(o.probability)},
                }
                for o in entry.operations
            ],
            "defaultUpperBoundTracesPerSecond": 0,
        }
    return body


def fallback_sampling(sampler: _sampling.Sampler | None) -> ServiceSampling:
    """What a service no policy names gets: the cluster default's gateway sampler."""
    match sampler:
        case _sampling.ProbabilisticSampler(rate=rate):
            chosen: ServiceProbabilistic | ServiceRateLimiting = ServiceProbabilistic(rate=rate)
        case _sampling.RateLimitingSampler(traces_per_second=tps):
            chosen = ServiceRateLimiting(traces_per_second=min(32_767, max(1, round(tps))))
        case _sampling.ConstSampler(decision=decision):
            chosen = ServiceProbabilistic(rate=1.0 if decision else 0.0)
        case _sampling.AdaptiveSampler(min_rate=rate):
            chosen = ServiceProbabilistic(rate=rate)
        case _sampling.PerOperationSampler(default_rate=rate):
            chosen = ServiceProbabilistic(rate=rate)
        case _:
            chosen = ServiceProbabilistic(rate=DEFAULT_PROBABILITY)
    return ServiceSampling(name="*", sampler=chosen)


@dataclass(frozen=True, slots=True)
class StrategySource:
    """One valid policy as the book reads it."""

    namespace: str
    name: str
    created: str
    """creationTimestamp (RFC 3339): the older policy wins a conflict."""
    services: tuple[ServiceSampling, ...]
    is_cluster_default: bool
    default_sampler: _sampling.Sampler | None = None
    """The cluster default's ``sampling.sampler`` (only read on the cluster default)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def source_from_spec(
    namespace: str, name: str, created: str, spec: "_model.TracingPolicySpec", root_namespace: str
) -> StrategySource:
    """One policy's spec as the book reads it."""
    cluster_default = namespace == root_namespace and spec.selector is None
    return StrategySource(
        namespace,
        name,
        created,
        tuple(spec.services),
        cluster_default,
        spec.sampling.sampler if cluster_default else None,
    )


def source_of(policy: "_model.TracingPolicy", root_namespace: str) -> StrategySource:
    """A TracingPolicy object as the book reads it."""
    meta = policy.metadata
    created = meta.creation_timestamp.isoformat() if meta.creation_timestamp else ""
    return source_from_spec(meta.namespace, meta.name, created, policy.spec, root_namespace)


@dataclass(frozen=True, slots=True)
class Chosen:
    entry: ServiceSampling
    source: str
    """namespace/name of the policy that set it ("" for the built-in default)."""


@dataclass
class StrategyBook:
    """Every service's strategy, the policy that set it, and who lost a conflict."""

    chosen: dict[str, Chosen] = field(default_factory=dict)
    fallback: Chosen = field(default_factory=lambda: Chosen(fallback_sampling(None), ""))
    losses: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """policy key -> [(service, winning policy key)]."""

    @classmethod
    def build(cls, sources: Iterable[StrategySource]) -> "StrategyBook":
        book = cls()
        ordered = sorted(sources, key=lambda s: (s.created, s.namespace, s.name))
        defaults = [s for s in ordered if s.is_cluster_default]
        if defaults:
            top = defaults[0]
            book.fallback = Chosen(fallback_sampling(top.default_sampler), top.key)
            for entry in top.services:
                book.chosen[entry.name] = Chosen(entry, top.key)
        overriding: dict[str, Chosen] = {}
        for source in ordered:
            if source.is_cluster_default:
                continue
            for entry in source.services:
                won = overriding.get(entry.name)
                if won is None:
                    overriding[entry.name] = Chosen(entry, source.key)
                else:
                    book.losses.setdefault(source.key, []).append((entry.name, won.source))
        book.chosen.update(overriding)
        return book

    def lookup(self, service: str) -> Chosen:
        """The strategy ``service`` gets and the policy it comes from."""
        return self.chosen.get(service) or self.fallback

    def responses(self) -> Mapping[str, dict[str, Any]]:
        return {name: strategy_response(c.entry) for name, c in self.chosen.items()}
