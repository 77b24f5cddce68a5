"""Secret references are resolved into the config and never shown to humans."""

import json

import pytest
from policy_builders import ROOT_NS, SELECT_GW, pod, pol

from gatetrace.policy import cli, effective, errors, index, loading, redaction, secretrefs

OTLP = {
    "type": "otlpHttp",
    "endpoint": "http://otel:4318/v1/traces",
    "headers": {"x-tenant": "shop"},
    "headersFrom": {"secretName": "otlp-auth"},
}


def _result() -> effective.EffectiveConfig:
    policies = [pol("edge", "w", SELECT_GW | {"reporters": [OTLP, {"type": "memory"}]})]
    return index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge", app="gw"))


def test_secret_is_read_from_the_namespace_of_the_policy_that_set_reporters() -> None:
    asked: list[tuple[str, str]] = []

    def lookup(namespace: str, name: str) -> dict[str, str]:
        asked.append((namespace, name))
        return {"Authorization": "Bearer s3cr3t", "x-tenant": "from-secret"}

    before = _result()
    after = secretrefs.resolve_secrets(before, lookup)
    assert asked == [("edge", "otlp-auth")]
    headers = after.config.reporters[0].headers  # type: ignore[union-attr]
    assert headers == {"authorization": "Bearer s3cr3t", "x-tenant": "shop"}
    assert after.version != before.version
    assert after.provenance == before.provenance


def test_rotated_secret_changes_the_version() -> None:
    one = secretrefs.resolve_secrets(_result(), lambda ns, n: {"authorization": "a"})
    two = secretrefs.resolve_secrets(_result(), lambda ns, n: {"authorization": "b"})
    assert one.version != two.version


def test_bad_secret_keys_are_reported_by_field() -> None:
    with pytest.raises(errors.ValidationFailed, match=r"reporters\[0\]\.headers"):
        secretrefs.resolve_secrets(_result(), lambda ns, n: {"not a header": "x"})


def test_errors_about_header_values_never_show_the_value() -> None:
    token = "Bearer s3cr3t" + "x" * 5000  # over the 4096-character limit
    with pytest.raises(errors.ValidationFailed) as raised:
        secretrefs.resolve_secrets(_result(), lambda ns, n: {"authorization": token})
    assert "reporters[0].headers.authorization" in str(raised.value)
    assert "(value redacted)" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)
    # the same when the operator merged the Secret into the policy before validating it
    reporter = {**OTLP, "headers": {"authorization": token}}
    with pytest.raises(errors.ValidationFailed) as raised:
        loading.parse_policy(
            {
                "apiVersion": "gatetrace.dev/v1alpha1",
                "kind": "TracingPolicy",
                "metadata": {"name": "w", "namespace": "edge"},
                "spec": SELECT_GW | {"reporters": [reporter]},
            }
        )
    assert "s3cr3t" not in str(raised.value)


def test_every_human_rendering_is_redacted() -> None:
    result = secretrefs.resolve_secrets(_result(), lambda ns, n: {"authorization": "Bearer s3cr3t"})
    assert "s3cr3t" in json.dumps(effective.wire_config(result.config))  # the PUT body needs it
    for text in (
        json.dumps(redaction.redact(result.config)),
        json.dumps(redaction.redact(effective.wire_config(result.config))),
        cli.explain_json(result),
        cli.render_explanation(result, None),
    ):
        assert "s3cr3t" not in text
        assert "shop" not in text or "<redacted>" in text
    assert redaction.redact(result.config)["reporters"][0]["headers"] == {
        "authorization": redaction.REDACTED,
        "x-tenant": redaction.REDACTED,
    }


def test_configs_without_secret_references_are_returned_unchanged() -> None:
    plain = index.compute_effective([], root_namespace=ROOT_NS, pod=pod("edge"))

    def lookup(namespace: str, name: str) -> dict[str, str]:
        raise AssertionError("no lookup expected")

    assert secretrefs.resolve_secrets(plain, lookup) is plain
