"""The CRD generated from the model: structural, documented, CEL that compiles, in sync."""

import copy
import pathlib
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import kubernetes_validate
import pytest
from crd_checker import compile_rule

from gatetrace import cli
from gatetrace.policy import crd

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "tracingpolicies.gatetrace.dev.yaml"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def test_crds_directory_is_exactly_the_generated_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crds"]) == 0
    printed = capsys.readouterr().out
    assert printed == crd.render_crd_yaml()
    assert CRD_FILE.read_text() == printed, "run `make crds` to regenerate crds/"


def test_accepted_by_the_apiextensions_v1_schema() -> None:
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(crd.build_crd(), version, strict=True)
    broken = crd.build_crd()
    del broken["spec"]["names"]["plural"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_kubernetes_client_models_read_it() -> None:
    api = kubernetes.client.ApiClient()
    model = api._ApiClient__deserialize(crd.build_crd(), "V1CustomResourceDefinition")  # type: ignore[attr-defined]
    assert model.spec.names.short_names == ["tp"]
    assert model.spec.names.categories == ["gatetrace"]
    version = model.spec.versions[0]
    assert version.subresources.status == {}
    assert [c.name for c in version.additional_printer_columns] == [
        "Sampler",
        "Rate",
        "Applied",
        "Target",
        "Ready",
        "Age",
    ]
    assert version.schema.open_apiv3_schema.properties["spec"].type == "object"


def test_schema_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert "$ref" not in node, path
        for combinator in ("oneOf", "anyOf", "allOf", "not"):
            assert combinator not in node, f"{path} uses {combinator}"
        if path != ".metadata":
            assert "type" in node, f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        assert "default" not in node, f"{path}: defaults would be stored in every object"
        if node.get("type") == "object" and "properties" not in node and path != ".metadata":
            assert isinstance(node.get("additionalProperties"), dict), f"{path}: open object"
    assert _schema()["properties"]["metadata"] == {"type": "object"}


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = _schema()["properties"]["spec"]
    undescribed = [
        path
        for path, node in _nodes(spec, ".spec")
        if not node.get("description") and not path.endswith(("[]", "{}"))
    ]
    assert undescribed == []
    sampler = spec["properties"]["sampling"]["properties"]["sampler"]
    assert "0.01" in sampler["description"]


def _rules() -> Iterator[tuple[str, dict[str, str]]]:
    for path, node in _nodes(_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            yield path, rule


def test_cel_rules_compile_and_have_messages() -> None:
    rules = list(_rules())
    assert len(rules) > 20
    for path, rule in rules:
        compile_rule(rule["rule"])
        assert rule["message"], path


def test_cel_rules_are_bounded_for_the_cost_estimator() -> None:
    # Rules over lists/maps need maxItems/maxProperties and strings maxLength,
    # or the API server refuses them as too expensive.
    for path, node in _nodes(_schema()["properties"]["spec"], ".spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path


def test_unions_are_flattened_with_per_type_rules() -> None:
    props = _schema()["properties"]["spec"]["properties"]
    sampler = props["sampling"]["properties"]["sampler"]
    assert sampler["required"] == ["type"]
    assert sampler["properties"]["type"]["enum"] == [
        "const",
        "probabilistic",
        "rateLimiting",
        "adaptive",
        "perOperation",
    ]
    messages = [r["message"] for r in sampler["x-kubernetes-validations"]]
    assert "probabilistic requires rate" in messages
    reporter = props["reporters"]["items"]
    assert set(reporter["properties"]) >= {"type", "host", "port", "endpoint", "headersFrom"}


def test_a_change_to_the_model_shows_in_the_crd() -> None:
    # The file check above can only fail if generation is deterministic and
    # complete; a mutated copy must differ.
    changed = copy.deepcopy(crd.build_crd())
    changed["spec"]["names"]["shortNames"] = ["tpx"]
    assert changed != crd.build_crd()
    assert crd.build_crd() == crd.build_crd()
