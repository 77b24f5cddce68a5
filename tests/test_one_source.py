"""Facts that live in one place and are derived (or pinned) elsewhere: each test fails when
one side changes without the other. See docs/extending.md for the tasks they guard."""

import typing
from typing import Annotated, Any

import pydantic
import pytest

from gatetrace.gateway import exporters, request_trace, store
from gatetrace.operator import shares
from gatetrace.policy import clamp, model, reporters, sampling, wire
from gatetrace.runtime.propagation import base as propagation
from gatetrace.runtime.propagation import composite


def test_the_policy_names_exactly_the_runtimes_formats() -> None:
    assert tuple(composite.FORMATS) == model.PROPAGATION_FORMATS
    every = list(model.PROPAGATION_FORMATS)
    config = model.TracingConfig.model_validate(
        {"propagation": {"extract": every, "inject": every}}
    )
    assert list(config.propagation.extract) == every


def test_every_formats_headers_are_stripped_before_injection() -> None:
    for name, factory in composite.FORMATS.items():
        fields = factory(propagation.IGNORE_FAILURES, propagation.DEFAULT_BAGGAGE_LIMITS).fields
        for header in fields:
            lower = header.lower()
            if lower.endswith("-"):
                assert lower in request_trace.KNOWN_TRACE_PREFIXES, (name, lower)
            else:
                assert lower in request_trace.KNOWN_TRACE_HEADERS, (name, lower)


def test_rate_fields_are_found_by_their_unit() -> None:
    assert sampling.rate_keys() == shares.RATE_KEYS
    assert {"tracesPerSecond", "maxTracesPerSecond", "maxPerSecond"} <= shares.RATE_KEYS

    class NewSampler(wire.WireModel):  # what a maintainer adds next
        burst_traces_per_second: wire.PerSecond = 1.0
        ratio: wire.Rate = 0.5
        label: str = ""

    class Holder(wire.WireModel):
        sampler: NewSampler | None = None
        extra: Annotated[float, wire.TRACES_PER_SECOND] = 0.0

    assert sampling.fields_in(wire.TRACES_PER_SECOND, Holder) == {
        "burstTracesPerSecond",
        "extra",
    }
    assert sampling.fields_in(wire.PROBABILITY, Holder) == {"ratio"}


def _sampler_classes() -> list[type[pydantic.BaseModel]]:
    union = typing.get_args(sampling.Sampler)[0]
    return [c for c in typing.get_args(union) if isinstance(c, type)]


@pytest.mark.parametrize("cls", _sampler_classes(), ids=lambda c: c.__name__)
def test_every_limited_field_of_every_sampler_is_clamped(cls: type[pydantic.BaseModel]) -> None:
    limits = sampling.NamespaceOverrideLimits(allowed=True, max_rate=0.1, max_traces_per_second=5.0)
    spec: dict[str, Any] = {"type": cls.model_fields["type"].default}
    marked = sampling.fields_in(wire.PROBABILITY, cls) | sampling.fields_in(
        wire.TRACES_PER_SECOND, cls
    )
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        if alias in marked:
            spec[alias] = 1.0 if alias in sampling.fields_in(wire.PROBABILITY, cls) else 1000.0
    if spec["type"] == "const":
        spec["decision"] = True
    clamped, notes = clamp.clamp_override({"sampler": spec}, limits)
    if spec["type"] == "const":
        assert clamped["sampler"] == {"type": "probabilistic", "rate": 0.1}
        return
    changed = {
        note.path.rsplit(".", 1)[1] for note in notes if note.path.startswith("sampling.sampler.")
    }
    assert changed == marked, (cls.__name__, changed, marked)


def test_overrides_may_set_exactly_the_override_models_fields() -> None:
    assert set(clamp.OVERRIDABLE) == {
        info.alias or name for name, info in sampling.SamplingOverride.model_fields.items()
    }


def _reporter_classes() -> list[type[pydantic.BaseModel]]:
    union = typing.get_args(reporters.Reporter)[0]
    return [c for c in typing.get_args(union) if isinstance(c, type)]


@pytest.mark.parametrize("cls", _reporter_classes(), ids=lambda c: c.__name__)
def test_every_reporter_type_has_an_exporter(cls: type[pydantic.BaseModel]) -> None:
    minimal: dict[str, Any] = {"type": cls.model_fields["type"].default}
    if "endpoint" in cls.model_fields:
        minimal["endpoint"] = "http://127.0.0.1:9"  # no path: valid for every type
    if "host" in cls.model_fields:
        minimal["host"] = "127.0.0.1"
    reporter = cls.model_validate(minimal)
    exporter = exporters.factory(store.SpanStore())(reporter)  # type: ignore[arg-type]
    assert exporter is not None


def test_the_queue_drop_hook_is_a_declared_protocol() -> None:
    from gatetrace.runtime import metrics
    from gatetrace.runtime.reporting import engine, export, jaeger_agent, jaeger_collector, zipkin

    agent = jaeger_agent.JaegerAgentExporter("127.0.0.1", 6831)
    collector = jaeger_collector.JaegerCollectorExporter("http://127.0.0.1:9/api/traces")
    assert isinstance(agent, export.ReportsQueueDrops)
    assert isinstance(collector, export.ReportsQueueDrops)
    assert not isinstance(
        zipkin.ZipkinExporter("http://127.0.0.1:9/api/v2/spans"), export.ReportsQueueDrops
    )
    processor = engine.BatchingProcessor(agent, engine.BatchSettings(), metrics.Registry())
    assert agent.full_queue_dropped is not None and agent.full_queue_dropped() == 0
    assert processor is not None


# What each RuntimeParts field became in ActiveTracing when it is not carried under its
# own name. A new RuntimeParts field must be carried by ActiveTracing.from_parts or named
# here, so no config part silently stops reaching requests.
_CONSUMED_PARTS = {
    "resource": "tracer",  # the tracer stamps it on every span
    "sampler": "tracer",  # the tracer's root sampler chain
    "priority_budget": "tracer",  # inside the sampler chain
    "span_processor": "tracer",  # where the tracer hands finished spans
    "prioritize": "priority",
    "namespace_prioritize": "namespace_priority",
    "processors": "reporters",
}


def test_every_runtime_part_reaches_active_tracing() -> None:
    import dataclasses

    from gatetrace.gateway import state
    from gatetrace.policy import build
    from gatetrace.runtime import metrics

    config = model.TracingConfig.model_validate(
        {
            "sampling": {
                "sampler": {"type": "probabilistic", "rate": 0.5},
                "prioritize": {"errors": True, "slowerThanMs": 250},
            },
            "headerTags": [{"header": "x-tenant", "tag": "tenant"}],
            "namespaceOverrides": {
                "shop": {"sampling": {"prioritize": {"errors": False}}},
            },
        }
    )
    parts = build.build_runtime(config, service="gw", registry=metrics.Registry())
    active = state.ActiveTracing.from_parts(parts, revision=3, config={"x": 1})
    carried = {f.name for f in dataclasses.fields(state.ActiveTracing)}
    for part in dataclasses.fields(build.RuntimeParts):
        if part.name in _CONSUMED_PARTS:
            assert _CONSUMED_PARTS[part.name] in carried, part.name
            continue
        assert part.name in carried, (
            f"RuntimeParts.{part.name} is neither carried by ActiveTracing.from_parts "
            "nor named in _CONSUMED_PARTS"
        )
        assert getattr(active, part.name) == getattr(parts, part.name), part.name
    assert active.priority == state.PrioritySettings(errors=True, slower_than_ns=250_000_000)
    assert set(active.namespace_samplers) == {"shop"}
    assert active.namespace_priority == {"shop": state.PrioritySettings(errors=False)}
    assert active.reporters == tuple(parts.processors)
