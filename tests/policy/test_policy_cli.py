"""``gatetrace policy validate|explain`` and ``gatetrace crds`` through the real entry point."""

import os
import pathlib
import subprocess
import sys

import pytest

from gatetrace import cli
from gatetrace.policy import cli as policy_cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"
INVALID = pathlib.Path(__file__).parent / "invalid"


def test_validate_accepts_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "8 valid, 0 invalid" in out
    assert "edge/checkout" in out


def test_validate_rejects_with_file_document_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    bad = INVALID / "rate-above-one.yaml"
    assert (
        cli.main(["policy", "validate", str(EXAMPLES / "00-cluster-default.yaml"), str(bad)]) == 1
    )
    out = capsys.readouterr().out
    assert f"{bad}#1: spec.sampling.sampler.rate: Input should be less than or equal to 1" in out
    assert "1 valid, 1 invalid" in out


# --- through the installed entry point, as a user runs it (a subprocess) ---

GATETRACE = [sys.executable, "-m", "gatetrace"]
_HEAD = "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATETRACE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def _policy(name: str, spec: str) -> str:
    return f"{_HEAD}metadata: {{name: {name}, namespace: a}}\nspec: {spec}\n"


def _unreadable_files(folder: pathlib.Path) -> dict[str, str]:
    """file name -> what its error line must say; every one written into ``folder``."""
    (folder / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (folder / "latin1.yaml").write_bytes(
        (_HEAD + "metadata: {name: café, namespace: a}\n").encode("latin-1")
    )
    (folder / "deep.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    return {
        "binary.yaml": "#1: not UTF-8 text: byte 0x80",
        "latin1.yaml": "#1: not UTF-8 text: byte 0xe9",
        "deep.yaml": "#1: line 1: nested deeper than",
    }


@pytest.mark.parametrize("action", ["validate", "explain"])
def test_unreadable_files_are_named_never_a_traceback(tmp_path: pathlib.Path, action: str) -> None:
    expected = _unreadable_files(tmp_path)
    if action == "validate":
        result = _cli("policy", "validate", str(tmp_path))
        out = result.stdout
    else:
        result = _cli("policy", "explain", "--policies", str(tmp_path), "--pod-namespace", "a")
        out = result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for name, message in expected.items():
        assert f"{tmp_path / name}{message}" in out, out


def test_syntax_error_in_document_2_of_3_leaves_1_and_3_validated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(
        _policy("one", "{sampling: {sampler: {type: probabilistic, rate: 7}}}")
        + "---\n"
        + f"{_HEAD}metadata: {{name: two, namespace: a\nspec: {{}}\n"
        + "---\n"
        + _policy("three", "{batching: {flushIntervalMs: 0}}")
    )
    result = _cli("policy", "validate", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert (
        f"{path}#1: spec.sampling.sampler.rate: Input should be less than or equal to 1"
        in (lines[0])
    )
    assert lines[1].startswith(f"{path}#2: YAML syntax error at line 9")
    assert lines[2].startswith(f"{path}#3: spec.batching.flushIntervalMs:")
    assert lines[-1] == "0 valid, 3 invalid"


@pytest.mark.parametrize(
    ("spec", "messages"),
    [
        (
            "{sampling: {sampler: {type: probabilistic, rate: -1, bogus: 3}}}",
            [
                "spec.sampling.sampler.rate: Input should be greater than or equal to 0",
                "spec.sampling.sampler.bogus: Extra inputs are not permitted",
            ],
        ),
        (
            "{baggage: {allow: [a, b, b], deny: [a], tagKeys: [a, c]}}",
            [
                "allow lists 'b' twice",
                "keys both allowed and denied: ['a']",
                "tagKeys names denied keys: ['a']",
                "tagKeys names keys that are not allowed: ['c']",
            ],
        ),
        (
            "{headerTags: [{header: x-a, tag: a}, {header: x-a, tag: b}],"
            " reporters: [{type: memory}, {type: memory}]}",
            ["headerTags lists 'x-a' twice", "reporters lists"],
        ),
    ],
    ids=["fields", "baggage-rules", "spec-rules"],
)
def test_every_message_of_a_block_is_reported(
    tmp_path: pathlib.Path, spec: str, messages: list[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_policy("p", spec))
    result = _cli("policy", "validate", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for message in messages:
        assert message in result.stdout, result.stdout


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
