"""Building the runtime objects a gateway runs from one effective config.

:func:`build_runtime` is pure: it reads a validated
:class:`~gatetrace.policy.model.TracingConfig` and returns fresh, unstarted
objects (samplers, propagator chain, baggage rules, tracer, batching
processors). Nothing runs until the caller starts the processors, so a config
that fails half-way leaves nothing behind, and the gateway can build the new
config completely before it swaps the old one out.

Reporters are built through an :class:`ExporterFactory` the caller provides:
the HTTP transports need aiohttp, which this layer may not import, and the
``memory`` reporter writes into the caller's span store.

The root sampler chain, outermost first::

    debug( priority( cap( parentBased( rules(default) ) ) ) )

so the global cap bounds the sampled traces (one bucket shared with every
namespace override's chain: the gateway's total), a debug flag counts against
it unless ``sampling.debug`` says otherwise, and the priority wrapper keeps
errors/slow requests the cap or the sampler dropped (within its own budget).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from gatetrace.policy import effective as _effective
from gatetrace.policy import errors as _errors
from gatetrace.policy import model as _model
from gatetrace.policy import reporters as _reporters
from gatetrace.policy import sampling as _sampling_model
from gatetrace.runtime import baggage_rules as _baggage_rules
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import process_resource as _process_resource
from gatetrace.runtime import span as _span
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.propagation import composite as _composite
from gatetrace.runtime.propagation import failures as _failures
from gatetrace.runtime.reporting import engine as _engine
from gatetrace.runtime.reporting import export as _export
from gatetrace.runtime.sampling import adaptive as _adaptive
from gatetrace.runtime.sampling import base as _sampling
from gatetrace.runtime.sampling import cap as _cap
from gatetrace.runtime.sampling import const as _const
from gatetrace.runtime.sampling import debug as _debug
from gatetrace.runtime.sampling import parentbased as _parentbased
from gatetrace.runtime.sampling import peroperation as _peroperation
from gatetrace.runtime.sampling import priority as _priority
from gatetrace.runtime.sampling import probabilistic as _probabilistic
from gatetrace.runtime.sampling import ratelimiting as _ratelimiting
from gatetrace.runtime.sampling import rules as _rules
from gatetrace.runtime.sampling import tokenbucket as _tokenbucket

__all__ = [
    "MEMORY_FLUSH_INTERVAL_MS",
    "BuildFailed",
    "ExporterFactory",
    "RuntimeParts",
    "SamplingChain",
    "build_runtime",
    "build_sampling",
    "config_version",
    "slower_than_ns",
]


CASE_INSENSITIVE_BAGGAGE_FORMATS: Final = frozenset({"jaeger", "xtrace"})
"""Formats carrying baggage keys in header names (``uberctx-{key}``, ``X-Baggage-{key}``),
which peers read case-insensitively."""

MEMORY_FLUSH_INTERVAL_MS: Final = 100
"""The ``memory`` reporter flushes at least this often (ms), whatever ``batching`` says."""


class BuildFailed(_errors.ValidationFailed):
    """A valid config whose runtime objects could not be built (names the field)."""


@dataclass(frozen=True, slots=True)
class SamplingChain:
    """A built sampler chain plus the priority settings it was built with."""

    sampler: _sampling.Sampler
    prioritize: _sampling_model.Prioritize | None = None
    budget: _priority.PriorityBudget | None = None
    gateway_cap: _tokenbucket.TokenBucket | None = None
    """The gateway-wide traces/s bucket the chain draws from (None: no cap)."""


@dataclass(frozen=True, slots=True)
class RuntimeParts:
    """Everything one config builds; nothing is started."""

    version: str
    """Content hash of the config (:func:`gatetrace.policy.effective.config_version`)."""
    resource: _span.Resource
    sampler: _sampling.Sampler
    """The gateway's root sampler chain."""
    tracer: _tracer.Tracer
    baggage: _baggage_rules.BaggageRules
    propagator: _propagation.Propagator
    namespace_samplers: Mapping[str, _sampling.Sampler] = field(default_factory=dict)
    """Sampler chains for traffic routed to services of each overriding namespace."""
    prioritize: _sampling_model.Prioritize | None = None
    priority_budget: _priority.PriorityBudget | None = None
    namespace_prioritize: Mapping[str, _sampling_model.Prioritize | None] = field(
        default_factory=dict
    )
    """For overriding namespaces whose effective ``prioritize`` differs from the gateway's."""
    header_tags: tuple[tuple[str, str], ...] = ()
    """(lowercase request header, tag) pairs."""
    baggage_tag_keys: frozenset[str] = frozenset()
    processors: Sequence[_engine.BatchingProcessor] = ()
    """Batching processors, one per reporter (config order), not started."""
    span_processor: _engine.ManagedProcessor | None = None
    """What the tracer hands finished spans to: the one processor, or a fan-out of all."""

    @property
    def slower_than_ns(self) -> int | None:
        """The latency threshold of the priority upgrade, in nanoseconds (None: off)."""
        return slower_than_ns(self.prioritize)

    @property
    def prioritize_errors(self) -> bool:
        return self.prioritize is not None and self.prioritize.errors


def slower_than_ns(prioritize: _sampling_model.Prioritize | None) -> int | None:
    """``prioritize.slowerThanMs`` in nanoseconds; None when latency priority is off."""
    if prioritize is None or prioritize.slower_than_ms is None:
        return None
    return prioritize.slower_than_ms * 1_000_000


ExporterFactory = Callable[[_reporters.Reporter], _export.Exporter]
"""Turns one reporter model into an exporter (HTTP transports, the memory store...)."""


def config_version(config: _model.TracingConfig) -> str:
    """The content hash the gateway reports as ``version`` (same as the operator's)."""
    return _effective.config_version(config)


def _leaf_sampler(model: _sampling_model.Sampler) -> _sampling.Sampler:
    match model:
        case _sampling_model.ConstSampler(decision=decision):
            return _const.ConstSampler(decision)
        case _sampling_model.ProbabilisticSampler(rate=rate):
            return _probabilistic.ProbabilisticSampler(rate)
        case _sampling_model.RateLimitingSampler(traces_per_second=tps):
            return _ratelimiting.RateLimitingSampler(tps)
        case _sampling_model.AdaptiveSampler():
            return _adaptive.AdaptiveSampler(
                model.target_traces_per_second, min_rate=model.min_rate, max_rate=model.max_rate
            )
        case _sampling_model.PerOperationSampler():
            return _peroperation.PerOperationSampler(
                model.default_rate,
                lower_bound_traces_per_second=model.lower_bound_traces_per_second,
                max_operations=model.max_operations,
            )
    raise TypeError(f"unknown sampler model {type(model).__name__}")


def _rule_match(match: _sampling_model.RuleMatch) -> _rules.RuleMatch:
    return _rules.RuleMatch.create(
        path_prefix=match.path_prefix,
        methods=match.methods,
        headers=dict(match.headers) if match.headers is not None else None,
    )


def build_sampling(
    sampling: _sampling_model.Sampling,
    *,
    loc: str = "sampling",
    budget: _priority.PriorityBudget | None = None,
    gateway_cap: _tokenbucket.TokenBucket | None = None,
    registry: _metrics.Registry | None = None,
) -> SamplingChain:
    """The sampler chain for one ``sampling`` block; ``budget`` is reused when given and
    ``prioritize`` is set (so overrides sharing the gateway's settings share its budget).

    ``gateway_cap`` is the gateway's ``maxTracesPerSecond`` bucket, shared by the root
    chain and every namespace override's chain, so the cap bounds the gateway's total;
    an override's own (lower) cap applies within it. Built here when not given (the
    root chain); :attr:`SamplingChain.gateway_cap` hands it on."""
    path = loc
    try:
        path = f"{loc}.sampler"
        sampler: _sampling.Sampler = _leaf_sampler(sampling.sampler)
        if sampling.rules:
            rules = []
            for index, rule in enumerate(sampling.rules):
                path = f"{loc}.rules[{index}]"
                rules.append(
                    _rules.SamplingRule(
                        _rule_match(rule.match), _leaf_sampler(rule.sampler), str(index)
                    )
                )
            path = f"{loc}.rules"
            sampler = _rules.RuleBasedSampler(rules, sampler)
        if sampling.parent_based:
            sampler = _parentbased.ParentBasedSampler(sampler)
        path = f"{loc}.maxTracesPerSecond"
        own_cap = sampling.max_traces_per_second
        caps: tuple[_tokenbucket.TokenBucket, ...] = ()
        if gateway_cap is None and own_cap is not None:
            # the root chain: the gateway's cap (or an override's, when the gateway has none)
            gateway_cap = _tokenbucket.TokenBucket(own_cap)
            capped = _cap.CappedSampler(sampler, own_cap, bucket=gateway_cap)
            sampler, caps = capped, capped.buckets
        elif gateway_cap is not None:
            if own_cap is not None and own_cap < gateway_cap.rate:  # the override's own, within
                capped = _cap.CappedSampler(sampler, own_cap, within=gateway_cap)
            else:
                capped = _cap.CappedSampler(sampler, gateway_cap.rate, bucket=gateway_cap)
            sampler, caps = capped, capped.buckets
        path = f"{loc}.prioritize"
        prioritize = sampling.prioritize
        if prioritize is not None:
            if budget is None:
                budget = _priority.PriorityBudget(prioritize.max_per_second, registry=registry)
            sampler = _priority.PrioritySampler(sampler, budget)
        else:
            budget = None
        path = f"{loc}.debug"
        debug = _debug.DebugSampler(
            sampler, sampling.debug, cap=caps, budget=budget, registry=registry
        )
    except (ValueError, TypeError) as e:
        raise BuildFailed([_errors.FieldError(path, str(e))]) from e
    return SamplingChain(debug, prioritize, budget, gateway_cap)


_DEFAULT_PROCESS: Final[tuple[tuple[str, _span.TagValue], ...]] = (
    ("gatetrace.component", "gateway"),
)


def _resource(
    service: str,
    config: _model.TracingConfig,
    process: Sequence[tuple[str, _span.TagValue]] | None,
) -> _span.Resource:
    """The process's attributes, then the policy's ``tags`` (which win on a shared key)."""
    merged: dict[str, _span.TagValue] = dict(_DEFAULT_PROCESS if process is None else process)
    merged.update(sorted(config.tags.items()))
    schema = "" if process is None else _process_resource.SCHEMA_URL
    return _span.Resource(service, tuple(merged.items()), schema)


def _build_propagator(
    config: _model.TracingConfig, registry: _metrics.Registry
) -> _propagation.Propagator:
    try:
        return _composite.build_propagator(
            config.propagation.extract,
            config.propagation.inject,
            _baggage_rules.ParseLimitDrops(_failures.MetricsFailureCounter(registry), registry),
            # a parse bound only: the configured limits count what survives allow/deny
            baggage_limits=_propagation.PARSE_BAGGAGE_LIMITS,
        )
    except (ValueError, TypeError) as e:
        raise BuildFailed([_errors.FieldError("propagation", str(e))]) from e


def _batch_settings(batching: _model.Batching) -> _engine.BatchSettings:
    try:
        return _engine.BatchSettings(
            max_queue_size=batching.max_queue_size,
            max_batch_size=batching.max_batch_size,
            flush_interval_ms=batching.flush_interval_ms,
            export_timeout_ms=batching.export_timeout_ms,
        )
    except ValueError as e:
        raise BuildFailed([_errors.FieldError("batching", str(e))]) from e


def _build_processors(
    config: _model.TracingConfig,
    registry: _metrics.Registry,
    exporters: ExporterFactory | None,
) -> tuple[_engine.BatchingProcessor, ...]:
    if exporters is None or not config.reporters:
        return ()
    settings = _batch_settings(config.batching)
    # the query API should see spans quickly: the in-process store is cheap to feed often
    memory_settings = dataclasses.replace(
        settings, flush_interval_ms=min(settings.flush_interval_ms, MEMORY_FLUSH_INTERVAL_MS)
    )
    built: list[_engine.BatchingProcessor] = []
    for index, reporter in enumerate(config.reporters):
        try:
            exporter = exporters(reporter)
        except (ValueError, TypeError, OSError) as e:
            raise BuildFailed([_errors.FieldError(f"reporters[{index}]", str(e))]) from e
        chosen = memory_settings if isinstance(reporter, _reporters.MemoryReporter) else settings
        built.append(_engine.BatchingProcessor(exporter, chosen, registry, instance=str(index)))
    return tuple(built)


def build_runtime(
    config: _model.TracingConfig,
    *,
    service: str,
    registry: _metrics.Registry,
    exporters: ExporterFactory | None = None,
    process: Sequence[tuple[str, _span.TagValue]] | None = None,
) -> RuntimeParts:
    """Build every runtime object for ``config``; raise :class:`BuildFailed` naming the field.

    ``process`` is the process's resource attributes
    (:attr:`~gatetrace.runtime.process_resource.ProcessResource.attributes`); None
    gives the bare ``gatetrace.component=gateway`` (tests, tools).

    ``registry`` receives the metrics of the tracer, samplers, baggage rules and
    reporters (the same names across builds, so counters survive config swaps).
    ``exporters`` turns each reporter model into an exporter; None builds no reporters.
    """
    root = build_sampling(config.sampling, registry=registry)
    namespace_samplers: dict[str, _sampling.Sampler] = {}
    namespace_prioritize: dict[str, _sampling_model.Prioritize | None] = {}
    for namespace in sorted(config.namespace_overrides):
        merged = _effective.sampling_for_namespace(config, namespace)
        same = merged.prioritize == root.prioritize
        chain = build_sampling(
            merged,
            loc=f"namespaceOverrides.{namespace}.sampling",
            budget=root.budget if same else None,
            gateway_cap=root.gateway_cap,
            registry=registry,
        )
        namespace_samplers[namespace] = chain.sampler
        if not same:
            namespace_prioritize[namespace] = merged.prioritize
    baggage = _baggage_rules.BaggageRules(
        allow=config.baggage.allow,
        deny=config.baggage.deny,
        max_entries=config.baggage.max_entries,
        max_bytes=config.baggage.max_bytes,
        case_insensitive=bool(
            CASE_INSENSITIVE_BAGGAGE_FORMATS
            & {*config.propagation.extract, *config.propagation.inject}
        ),
        registry=registry,
    )
    propagator = _build_propagator(config, registry)
    processors = _build_processors(config, registry, exporters)
    span_processor: _engine.ManagedProcessor | None = None
    if len(processors) == 1:
        span_processor = processors[0]
    elif processors:
        span_processor = _engine.FanOutProcessor(processors)
    resource = _resource(service, config, process)
    tracer = _tracer.Tracer(
        resource,
        sampler=root.sampler,
        processor=span_processor,
        tracer_metrics=_tracer.TracerMetrics(registry),
    )
    return RuntimeParts(
        version=config_version(config),
        resource=resource,
        sampler=root.sampler,
        tracer=tracer,
        baggage=baggage,
        propagator=propagator,
        namespace_samplers=namespace_samplers,
        prioritize=root.prioritize,
        priority_budget=root.budget,
        namespace_prioritize=namespace_prioritize,
        header_tags=tuple((h.header.lower(), h.tag) for h in config.header_tags),
        baggage_tag_keys=frozenset(config.baggage.tag_keys),
        processors=processors,
        span_processor=span_processor,
    )
