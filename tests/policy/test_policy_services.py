"""``spec.services``: the model and its CEL twin, Jaeger's response shapes, precedence."""

import pathlib
from typing import Any

import pydantic
import pytest
from crd_checker import crd_problems

from gatetrace.policy import crd, model, sampling, services


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": spec,
    }


CHECKOUT = {
    "name": "checkout",
    "sampler": {"type": "probabilistic", "rate": 0.25},
    "operations": [{"operation": "GET /health", "probability": 0.0}],
    "defaultLowerBoundTracesPerSecond": 0.5,
}


def test_a_service_entry_is_accepted_by_the_model_and_the_crd() -> None:
    spec = model.TracingPolicySpec.model_validate({"services": [CHECKOUT]})
    assert spec.services[0].operations[0].probability == 0.0
    assert crd_problems(crd.build_crd(), _policy({"services": [CHECKOUT]})) == []


@pytest.mark.parametrize(
    ("entry", "where", "problem"),
    [
        (
            {**CHECKOUT, "sampler": {"type": "rateLimiting", "tracesPerSecond": 5}},
            "services.0",
            "operations need a probabilistic sampler",
        ),
        ({"name": "x", "sampler": {"type": "probabilistic", "rate": 1.5}}, "rate", "1"),
        ({"name": "x" * 257, "sampler": {"type": "probabilistic", "rate": 0.5}}, "name", "256"),
        (
            {"name": "x", "sampler": {"type": "rateLimiting", "tracesPerSecond": 40_000}},
            "tracesPerSecond",
            "32767",
        ),
        ({"name": "x", "sampler": {"type": "const", "decision": True}}, "sampler", "type"),
    ],
)
def test_bad_entries_are_refused_by_both_naming_the_field(
    entry: dict[str, Any], where: str, problem: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        model.TracingPolicySpec.model_validate({"services": [entry]})
    assert where in str(info.value) and problem in str(info.value)
    assert crd_problems(crd.build_crd(), _policy({"services": [entry]})), entry


def test_the_same_service_twice_in_one_policy_is_refused() -> None:
    twice = [CHECKOUT, {**CHECKOUT, "operations": []}]
    with pytest.raises(pydantic.ValidationError):
        model.TracingPolicySpec.model_validate({"services": twice})
    assert crd_problems(crd.build_crd(), _policy({"services": twice}))


def test_explain_names_the_policy_and_services_stay_out_of_gateway_configs(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from gatetrace import cli

    older = _policy({"services": [CHECKOUT], "tags": {"a": "b"}})
    older["metadata"].update(name="older", creationTimestamp="2026-01-01T00:00:00Z")
    newer = _policy({"services": [{**CHECKOUT, "sampler": {"type": "probabilistic", "rate": 1}}]})
    newer["metadata"].update(name="newer", creationTimestamp="2026-02-01T00:00:00Z")
    root = _policy({"sampling": {"sampler": {"type": "probabilistic", "rate": 0.05}}})
    root["metadata"].update(name="default", namespace="gatetrace-system")
    for doc in (older, newer, root):
        (tmp_path / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    base = ["policy", "explain", "--policies", str(tmp_path)]
    assert cli.main([*base, "--service", "checkout"]) == 0
    out = capsys.readouterr().out
    assert "spec.services of shop/older" in out and '"samplingRate": 0.25' in out
    assert "shop/newer also names it; shop/older wins" in out
    assert cli.main([*base, "--service", "nobody"]) == 0
    out = capsys.readouterr().out
    assert "cluster default's sampling.sampler (gatetrace-system/default)" in out
    assert '"samplingRate": 0.05' in out
    assert cli.main([*base, "--pod-namespace", "shop"]) == 0
    out = capsys.readouterr().out
    assert "checkout" not in out and "services" not in out
    assert cli.main([*base, "--service", "x" * 257]) == 2
    assert "--service" in capsys.readouterr().err


def test_responses_have_jaegers_shape() -> None:
    entry = services.ServiceSampling.model_validate(CHECKOUT)
    assert services.strategy_response(entry) == {
        "strategyType": 0,
        "probabilisticSampling": {"samplingRate": 0.25},
        "operationSampling": {
            "defaultSamplingProbability": 0.25,
            "defaultLowerBoundTracesPerSecond": 0.5,
            "perOperationStrategies": [
                {"operation": "GET /health", "probabilisticSampling": {"samplingRate": 0.0}}
            ],
            "defaultUpperBoundTracesPerSecond": 0,
        },
    }
    limited = services.ServiceSampling.model_validate(
        {"name": "x", "sampler": {"type": "rateLimiting", "tracesPerSecond": 7}}
    )
    assert services.strategy_response(limited) == {
        "strategyType": 1,
        "rateLimitingSampling": {"maxTracesPerSecond": 7},
    }


def _source(
    name: str, created: str, entries: list[dict[str, Any]], *, default: bool = False, **kw: Any
) -> services.StrategySource:
    parsed = tuple(services.ServiceSampling.model_validate(e) for e in entries)
    return services.StrategySource("ns", name, created, parsed, default, **kw)


def _entry(name: str, rate: float) -> dict[str, Any]:
    return {"name": name, "sampler": {"type": "probabilistic", "rate": rate}}


def test_any_policy_overrides_the_cluster_default_and_the_oldest_wins() -> None:
    book = services.StrategyBook.build(
        [
            _source("newer", "2026-02-01T00:00:00Z", [_entry("checkout", 0.3)]),
            _source(
                "root",
                "2026-03-01T00:00:00Z",
                [_entry("checkout", 0.9), _entry("cart", 0.8)],
                default=True,
            ),
            _source("older", "2026-01-01T00:00:00Z", [_entry("checkout", 0.1)]),
        ]
    )
    assert book.lookup("checkout").source == "ns/older"
    assert book.lookup("cart").source == "ns/root"
    assert book.losses == {"ns/newer": [("checkout", "ns/older")]}


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        (sampling.ProbabilisticSampler(rate=0.2), {"samplingRate": 0.2}),
        (sampling.ConstSampler(decision=False), {"samplingRate": 0.0}),
        (sampling.RateLimitingSampler(traces_per_second=2.6), {"maxTracesPerSecond": 3}),
        (None, {"samplingRate": 0.001}),
    ],
)
def test_unnamed_services_get_the_cluster_defaults_sampler(
    sampler: sampling.Sampler | None, expected: dict[str, float]
) -> None:
    sources = (
        []
        if sampler is None
        else [_source("root", "2026-01-01T00:00:00Z", [], default=True, default_sampler=sampler)]
    )
    book = services.StrategyBook.build(sources)
    chosen = book.lookup("anyone")
    body = services.strategy_response(chosen.entry)
    assert expected in body.values()
    assert chosen.source == ("" if sampler is None else "ns/root")
