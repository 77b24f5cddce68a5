"""Every example policy round-trips; every invalid one is rejected at the right field."""

import pathlib

import pytest
import yaml

from gatetrace.policy import crd, errors, loading, model
from gatetrace.policy import sampling as sampling_models

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.yaml"))
INVALID = sorted((pathlib.Path(__file__).parent / "invalid").glob("*.yaml"))


def _expectation(path: pathlib.Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks '# expect: loc | msg'"
    loc, _, msg = first.removeprefix("# expect: ").partition(" | ")
    return loc.strip(), msg.strip()


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_round_trips(path: pathlib.Path) -> None:
    raw_documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    loaded = loading.load_paths([path])
    assert len(loaded) == len(raw_documents)
    for raw, doc in zip(raw_documents, loaded, strict=True):
        assert doc.problems == ()
        assert doc.policy is not None
        dumped = doc.policy.model_dump(mode="json", exclude_unset=True)
        # What the user wrote comes back unchanged (header names are lower-cased
        # on input; the examples already use lower case).
        assert dumped == raw
        again = model.TracingPolicy.model_validate(yaml.safe_load(yaml.safe_dump(dumped)))
        assert again == doc.policy


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_at_the_field(path: pathlib.Path) -> None:
    loc, msg = _expectation(path)
    loaded = loading.load_paths([path])
    assert len(loaded) == 1
    assert loaded[0].policy is None
    matching = [e for e in loaded[0].problems if e.loc == loc]
    assert matching, f"no error at {loc}: {loaded[0].problems}"
    assert any(msg in e.msg for e in matching), f"{msg!r} not in {matching}"


_CRD_CANNOT_SEE = {
    # The API server routes by apiVersion before any schema applies.
    "wrong-api-version.yaml",
}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_by_the_crd_too(path: pathlib.Path) -> None:
    if path.name in _CRD_CANNOT_SEE:
        pytest.skip("checked by the API server's routing, not the schema")
    from crd_checker import crd_problems

    document = yaml.safe_load(path.read_text())
    assert crd_problems(crd.build_crd(), document), "the CRD accepts what the model rejects"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_valid_example_is_accepted_by_the_crd(path: pathlib.Path) -> None:
    from crd_checker import crd_problems

    for document in yaml.safe_load_all(path.read_text()):
        assert crd_problems(crd.build_crd(), document) == []


def test_yaml_syntax_error_names_the_line() -> None:
    loaded = loading.load_text("kind: TracingPolicy\nspec: [unclosed\n", "x.yaml")
    assert loaded[0].policy is None
    assert "line" in loaded[0].problems[0].msg


def test_other_kinds_are_refused_by_name() -> None:
    loaded = loading.load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert loaded[0].problems == (
        errors.FieldError("kind", "expected 'TracingPolicy', got 'ConfigMap'"),
    )


def test_all_errors_of_a_document_are_reported() -> None:
    text = """
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {name: x}
spec:
  sampling: {sampler: {type: probabilistic, rate: 2}}
  batching: {maxQueueSize: 0}
"""
    with pytest.raises(errors.ValidationFailed) as caught:
        loading.parse_policy(yaml.safe_load(text))
    locs = {e.loc for e in caught.value.errors}
    assert locs == {"spec.sampling.sampler.rate", "spec.batching.maxQueueSize"}


def test_safe_defaults() -> None:
    config = model.TracingConfig()
    sampler = config.sampling.sampler
    assert isinstance(sampler, sampling_models.ProbabilisticSampler)
    assert sampler.rate == 0.01
    assert config.sampling.parent_based is True
    assert config.propagation.extract == ["tracecontext", "baggage"]
    assert config.propagation.inject == ["tracecontext", "baggage"]
    assert (config.baggage.max_entries, config.baggage.max_bytes) == (64, 8192)
    b = config.batching
    assert (b.max_queue_size, b.max_batch_size, b.flush_interval_ms, b.export_timeout_ms) == (
        2048,
        512,
        1000,
        5000,
    )
    assert config.sampling.namespace_overrides.allowed is False


def test_names_and_aliases_are_both_accepted() -> None:
    by_alias = model.Batching.model_validate({"maxQueueSize": 10, "maxBatchSize": 5})
    by_name = model.Batching.model_validate({"max_queue_size": 10, "max_batch_size": 5})
    assert by_alias == by_name
    assert by_name.model_dump()["maxQueueSize"] == 10
