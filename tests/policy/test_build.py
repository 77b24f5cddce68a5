"""build_runtime: the runtime objects an effective config builds (samplers, propagators,
baggage rules, resource, header tags, reporters) and the errors naming the field."""

from collections.abc import Sequence

import pytest

from gatetrace.policy import build, model, reporters
from gatetrace.runtime import baggage, metrics, spancontext
from gatetrace.runtime import span as span_mod
from gatetrace.runtime.propagation import base as prop
from gatetrace.runtime.reporting import engine, export
from gatetrace.runtime.sampling import base as sb


def _config(doc: dict[str, object]) -> model.TracingConfig:
    return model.TracingConfig.model_validate(doc)


def _build(doc: dict[str, object], **kw: object) -> build.RuntimeParts:
    return build.build_runtime(
        _config(doc),
        service="gw",
        registry=metrics.Registry(),
        **kw,  # type: ignore[arg-type]
    )


def _params(
    *,
    path: str = "/",
    method: str = "GET",
    parent: spancontext.SpanContext | None = None,
    trace_id: int = 1,
) -> sb.SamplingParams:
    info = sb.RequestInfo(method, path, {})
    return sb.SamplingParams(trace_id, "op", span_mod.SpanKind.SERVER, parent, info)


def test_defaults_build_parent_based_probabilistic_and_w3c() -> None:
    parts = _build({})
    assert "parent" in parts.sampler.describe()
    assert "0.01" in parts.sampler.describe()
    assert parts.propagator.fields >= {"traceparent", "tracestate", "baggage"}
    assert parts.processors == ()
    assert parts.span_processor is None
    assert parts.resource.service_name == "gw"
    assert parts.version.startswith("sha256:")
    assert parts.prioritize is None
    assert parts.slower_than_ns is None
    assert not parts.prioritize_errors


def test_rules_pick_their_sampler_first_match_wins() -> None:
    parts = _build(
        {
            "sampling": {
                "sampler": {"type": "const", "decision": False},
                "parentBased": False,
                "rules": [
                    {
                        "match": {"pathPrefix": "/pay", "methods": ["POST"]},
                        "sampler": {"type": "const", "decision": True},
                    },
                    {
                        "match": {"pathPrefix": "/pay"},
                        "sampler": {"type": "const", "decision": False},
                    },
                ],
            }
        }
    )
    hit = parts.sampler.should_sample(_params(path="/pay/1", method="POST"))
    assert hit.decision is sb.Decision.SAMPLE
    assert hit.reason == "rule:0"
    assert parts.sampler.should_sample(_params(path="/pay/1")).decision is sb.Decision.DROP
    assert parts.sampler.should_sample(_params(path="/x")).decision is sb.Decision.DROP


def test_parent_based_follows_upstream_flag() -> None:
    parts = _build({"sampling": {"sampler": {"type": "const", "decision": False}}})
    sampled_parent = spancontext.SpanContext(1, 2, True, remote=True)
    result = parts.sampler.should_sample(_params(parent=sampled_parent))
    assert result.decision is sb.Decision.SAMPLE
    assert result.reason == "parent"
    off = _build(
        {"sampling": {"sampler": {"type": "const", "decision": False}, "parentBased": False}}
    )
    assert off.sampler.should_sample(_params(parent=sampled_parent)).decision is sb.Decision.DROP


def test_debug_flag_wins_over_everything() -> None:
    parts = _build(
        {"sampling": {"sampler": {"type": "const", "decision": False}, "parentBased": False}}
    )
    debug_parent = spancontext.SpanContext(1, 2, False, debug=True, remote=True)
    assert parts.sampler.should_sample(_params(parent=debug_parent)).decision is sb.Decision.SAMPLE


def test_cap_bounds_sampled_traces() -> None:
    parts = _build(
        {
            "sampling": {
                "sampler": {"type": "const", "decision": True},
                "maxTracesPerSecond": 3,
            }
        }
    )
    decisions = [parts.sampler.should_sample(_params()).decision for _ in range(50)]
    assert 1 <= decisions.count(sb.Decision.SAMPLE) <= 5
    assert sb.Decision.DROP in decisions


def test_prioritize_turns_drops_into_record_only_with_budget() -> None:
    parts = _build(
        {
            "sampling": {
                "sampler": {"type": "const", "decision": False},
                "prioritize": {"errors": True, "slowerThanMs": 250, "maxPerSecond": 5},
            }
        }
    )
    result = parts.sampler.should_sample(_params())
    assert result.decision is sb.Decision.RECORD_ONLY
    assert result.budget is parts.priority_budget
    assert parts.prioritize_errors
    assert parts.slower_than_ns == 250_000_000


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        ({"type": "probabilistic", "rate": 0.5}, "probabilistic"),
        ({"type": "rateLimiting", "tracesPerSecond": 5}, "ratelimiting"),
        ({"type": "adaptive", "targetTracesPerSecond": 5}, "adaptive"),
        ({"type": "perOperation", "defaultRate": 0.2}, "peroperation"),
        ({"type": "const", "decision": True}, "const"),
    ],
)
def test_every_sampler_type_builds(sampler: dict[str, object], expected: str) -> None:
    parts = _build({"sampling": {"sampler": sampler, "parentBased": False}})
    described = parts.sampler.describe().lower().replace("_", "").replace("-", "")
    assert expected.replace("ratelimiting", "rate") in described
    parts.sampler.should_sample(_params())


def test_namespace_overrides_get_their_own_chain() -> None:
    parts = _build(
        {
            "sampling": {"sampler": {"type": "const", "decision": False}, "parentBased": False},
            "namespaceOverrides": {
                "shop": {"sampling": {"sampler": {"type": "const", "decision": True}}}
            },
        }
    )
    assert set(parts.namespace_samplers) == {"shop"}
    shop = parts.namespace_samplers["shop"]
    assert shop.should_sample(_params()).decision is sb.Decision.SAMPLE
    assert parts.sampler.should_sample(_params()).decision is sb.Decision.DROP


def test_namespace_override_inherits_prioritize_and_shares_budget() -> None:
    parts = _build(
        {
            "sampling": {
                "sampler": {"type": "const", "decision": False},
                "prioritize": {"maxPerSecond": 2},
            },
            "namespaceOverrides": {"shop": {"sampling": {"parentBased": False}}},
        }
    )
    result = parts.namespace_samplers["shop"].should_sample(_params())
    assert result.decision is sb.Decision.RECORD_ONLY
    assert result.budget is parts.priority_budget


def test_propagation_chain_in_configured_order() -> None:
    parts = _build({"propagation": {"extract": ["b3", "tracecontext"], "inject": ["b3multi"]}})
    carrier: dict[str, str] = {}
    ctx = spancontext.SpanContext(0xABC, 0xDEF, True)
    parts.propagator.inject(ctx, carrier, prop.DictSetter())
    assert {k.lower() for k in carrier} >= {"x-b3-traceid", "x-b3-spanid"}
    headers = {
        "b3": f"{0x111:032x}-{0x222:016x}-1",
        "traceparent": f"00-{0x333:032x}-{0x444:016x}-01",
    }
    found = parts.propagator.extract(headers, prop.DictGetter(), prop.EMPTY)
    assert found.context is not None
    assert found.context.trace_id == 0x111


def test_propagation_failures_are_counted_in_the_registry() -> None:
    registry = metrics.Registry()
    parts = build.build_runtime(_config({}), service="gw", registry=registry)
    parts.propagator.extract({"traceparent": "garbage"}, prop.DictGetter(), prop.EMPTY)
    assert "gatetrace_propagation_failures" in metrics.render_prometheus([registry])


def test_baggage_rules_resource_and_header_tags() -> None:
    parts = _build(
        {
            "baggage": {"allow": ["tenant-id"], "maxEntries": 2, "tagKeys": ["tenant-id"]},
            "tags": {"deployment.environment": "prod"},
            "headerTags": [{"header": "X-Request-Id", "tag": "http.request_id"}],
        }
    )
    kept = parts.baggage.apply(baggage.Baggage.from_values({"tenant-id": "t", "other": "o"}))
    assert dict(kept) == {"tenant-id": "t"}
    assert parts.baggage_tag_keys == frozenset({"tenant-id"})
    assert ("deployment.environment", "prod") in parts.resource.tags
    assert parts.header_tags == (("x-request-id", "http.request_id"),)
    assert parts.tracer.resource is parts.resource


class _Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[list[span_mod.Span]] = []

    async def export(self, spans: Sequence[span_mod.Span], timeout: float) -> export.ExportOutcome:
        self.batches.append(list(spans))
        return export.ExportOutcome.success()

    async def close(self) -> None:
        pass


def test_reporters_become_unstarted_batching_processors_in_order() -> None:
    made: list[reporters.Reporter] = []

    def factory(reporter: reporters.Reporter) -> export.Exporter:
        made.append(reporter)
        return _Recorder(reporter.type)

    parts = _build(
        {
            "reporters": [
                {"type": "memory"},
                {"type": "zipkin", "endpoint": "http://127.0.0.1:9/api/v2/spans"},
            ],
            "batching": {"maxQueueSize": 10, "maxBatchSize": 5, "flushIntervalMs": 50},
        },
        exporters=factory,
    )
    assert [r.type for r in made] == ["memory", "zipkin"]
    assert len(parts.processors) == 2
    assert all(isinstance(p, engine.BatchingProcessor) for p in parts.processors)
    assert not any(p.started for p in parts.processors)
    assert parts.processors[0].settings.max_queue_size == 10
    assert parts.processors[0].settings.flush_interval_ms == 50
    assert parts.processors[1].settings.flush_interval_ms == 50
    assert isinstance(parts.span_processor, engine.FanOutProcessor)
    assert parts.tracer.processor is parts.span_processor


def test_single_reporter_is_the_tracer_processor() -> None:
    parts = _build({}, exporters=lambda r: _Recorder(r.type))
    assert len(parts.processors) == 1
    assert parts.tracer.processor is parts.processors[0]


def test_exporter_factory_error_names_the_reporter() -> None:
    def factory(reporter: reporters.Reporter) -> export.Exporter:
        raise ValueError("cannot resolve host")

    with pytest.raises(build.BuildFailed) as info:
        _build({"reporters": [{"type": "log"}]}, exporters=factory)
    assert info.value.errors[0].loc == "reporters[0]"
    assert "cannot resolve host" in info.value.errors[0].msg


def test_version_is_the_content_hash() -> None:
    a = _build({"tags": {"a": "1"}})
    b = _build({"tags": {"a": "1"}})
    c = _build({"tags": {"a": "2"}})
    assert a.version == b.version != c.version
    assert a.version == build.config_version(_config({"tags": {"a": "1"}}))


def test_builds_are_independent() -> None:
    a = _build({"sampling": {"sampler": {"type": "rateLimiting", "tracesPerSecond": 1}}})
    b = _build({"sampling": {"sampler": {"type": "rateLimiting", "tracesPerSecond": 1}}})
    assert a.sampler is not b.sampler
    assert a.tracer is not b.tracer


def test_memory_reporter_flushes_at_least_every_100ms() -> None:
    parts = _build(
        {
            "reporters": [
                {"type": "memory"},
                {"type": "zipkin", "endpoint": "http://127.0.0.1:9/api/v2/spans"},
            ],
            "batching": {"flushIntervalMs": 5000},
        },
        exporters=lambda r: _Recorder(r.type),
    )
    memory, zipkin = parts.processors
    assert memory.settings.flush_interval_ms == build.MEMORY_FLUSH_INTERVAL_MS
    assert zipkin.settings.flush_interval_ms == 5000


def test_namespace_with_its_own_prioritize_is_reported() -> None:
    parts = _build(
        {
            "sampling": {"sampler": {"type": "const", "decision": False}},
            "namespaceOverrides": {
                "shop": {"sampling": {"prioritize": {"errors": False, "slowerThanMs": 10}}},
                "same": {"sampling": {"parentBased": False}},
            },
        }
    )
    assert parts.prioritize is None
    shop = parts.namespace_prioritize["shop"]
    assert shop is not None
    assert build.slower_than_ns(shop) == 10_000_000
    assert "same" not in parts.namespace_prioritize
    result = parts.namespace_samplers["shop"].should_sample(_params())
    assert result.decision is sb.Decision.RECORD_ONLY
    assert result.budget is not None
