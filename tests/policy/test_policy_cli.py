"""``gatetrace policy validate|explain`` and ``gatetrace crds`` through the real entry point."""

import pathlib

import pytest

from gatetrace import cli
from gatetrace.policy import cli as policy_cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"
INVALID = pathlib.Path(__file__).parent / "invalid"


def test_validate_accepts_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "7 valid, 0 invalid" in out
    assert "edge/checkout" in out


def test_validate_rejects_with_file_document_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    bad = INVALID / "rate-above-one.yaml"
    assert (
        cli.main(["policy", "validate", str(EXAMPLES / "00-cluster-default.yaml"), str(bad)]) == 1
    )
    out = capsys.readouterr().out
    assert f"{bad}#1: spec.sampling.sampler.rate: Input should be less than or equal to 1" in out
    assert "1 valid, 1 invalid" in out


def test_validate_warns_when_a_policy_alone_breaks_the_defaults(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\n"
        "metadata: {name: p, namespace: x}\nspec: {batching: {maxBatchSize: 4096}}\n"
    )
    code, text = policy_cli.validate([str(path)])
    assert code == 0
    assert "warning: over the built-in defaults, batching.maxBatchSize 4096 is above" in text


def test_validate_with_nothing_to_read_fails(tmp_path: pathlib.Path) -> None:
    assert policy_cli.validate([str(tmp_path)])[0] == 1


def test_explain_shows_config_provenance_and_clamps(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "policy",
            "explain",
            "--policies",
            str(EXAMPLES),
            "--pod-namespace",
            "edge",
            "--pod-labels",
            "app.kubernetes.io/name=api-gateway",
            "--route-namespace",
            "shop",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "workload   edge/checkout" in out
    assert "override   shop/shop-sampling" in out
    assert "sampling.sampler" in out
    assert "shop (shop/shop-sampling) sampling.sampler.rate clamped: 0.8 -> 0.5" in out
    assert (
        "sampling for traffic routed to namespace shop "
        "(overridden: maxTracesPerSecond, rules, sampler)" in out
    )
    assert "version: sha256:" in out


def test_explain_redacts_header_values(tmp_path: pathlib.Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\n"
        "metadata: {name: p, namespace: gatetrace-system}\n"
        "spec:\n  reporters:\n  - type: otlpHttp\n    endpoint: http://otel:4318/v1/traces\n"
        "    headers: {authorization: Bearer s3cr3t}\n"
    )
    code, text = policy_cli.explain(str(tmp_path), pod_namespace="edge", pod_labels={})
    assert code == 0
    assert "s3cr3t" not in text
    assert "authorization: <redacted>" in text


def test_explain_refuses_invalid_policy_files(tmp_path: pathlib.Path) -> None:
    (tmp_path / "bad.yaml").write_text((INVALID / "typo-field.yaml").read_text())
    code, text = policy_cli.explain(str(tmp_path), pod_namespace="edge", pod_labels={})
    assert code == 1
    assert "spec.sampling.parentbased: Extra inputs are not permitted" in text


def test_bad_pod_labels_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["policy", "explain", "--policies", str(EXAMPLES), "--pod-namespace", "edge"]
    assert cli.main([*args, "--pod-labels", "app"]) == 2
    assert "bad label 'app'" in capsys.readouterr().err


def test_parse_labels() -> None:
    assert policy_cli.parse_labels("a=1, b=2,,c=") == {"a": "1", "b": "2", "c": ""}
    with pytest.raises(ValueError, match="=x"):
        policy_cli.parse_labels("=x")


def test_subcommands_are_registered_in_one_place() -> None:
    assert {"crds", "policy"} <= set(cli.SUBCOMMANDS)
    with pytest.raises(SystemExit):
        cli.main([])


def test_validate_reports_every_problem_of_every_document(tmp_path: pathlib.Path) -> None:
    """All messages of a block, each document on its own (a syntax error in document 2 of 3
    does not hide documents 1 and 3), files that are not UTF-8 or nest too deeply named."""
    head = "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\n"
    (tmp_path / "three.yaml").write_text(
        head
        + "metadata: {name: a, namespace: x}\nspec: {}\n---\nkind: [oops\n---\n"
        + head
        + "metadata: {name: c, namespace: x}\nspec:\n  sampling:\n"
        + "    sampler: {type: probabilistic, rate: 7}\n"
        + "    maxTracesPerSecond: -1\n    parentBased: maybe\n"
    )
    (tmp_path / "latin.yaml").write_bytes(b"kind: Trac\xe9ngPolicy\n")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    code, text = policy_cli.validate([str(tmp_path)])
    assert code == 1
    lines = text.splitlines()
    assert any(line.startswith("three.yaml#1: ok") or "three.yaml#1: ok" in line for line in lines)
    assert any("three.yaml#2: YAML syntax error" in line for line in lines)
    third = [line for line in lines if "three.yaml#3:" in line]
    assert len(third) == 3, third  # rate, maxTracesPerSecond and parentBased
    assert any("latin.yaml#1: not UTF-8 text: byte 0xe9" in line for line in lines)
    assert any("deep.yaml#1" in line and "deeper than 64" in line for line in lines)
    assert "Traceback" not in text
