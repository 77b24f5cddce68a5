"""A reporter's ``tls``: the rules of the model, Secret material resolved into the
effective config, and never shown to humans (redaction, error messages)."""

import json
from typing import Any

import pydantic
import pytest
from policy_builders import ROOT_NS, SELECT_GW, pod, pol

from gatetrace.policy import (
    cli,
    effective,
    errors,
    index,
    loading,
    redaction,
    reporters,
    secretrefs,
)

CA = "-----BEGIN CERTIFICATE-----\nQ0EtY2VydA==\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
KEY_LINE = "c2VjcmV0LWtleS1tYXRlcmlhbA=="
TLS_SECRET = {"ca.crt": CA, "tls.crt": CERT, "tls.key": KEY}


def _reporter(kind: str = "otlpGrpc", **tls: Any) -> dict[str, Any]:
    endpoint = "https://otel:4317" if kind == "otlpGrpc" else "https://otel:4318/v1/traces"
    return {"type": kind, "endpoint": endpoint, "tls": tls}


def _result(reporter: dict[str, Any]) -> effective.EffectiveConfig:
    policies = [pol("edge", "w", SELECT_GW | {"reporters": [reporter, {"type": "memory"}]})]
    return index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge", app="gw"))


def _problem(reporter: dict[str, Any]) -> str:
    with pytest.raises(pydantic.ValidationError) as raised:
        pydantic.TypeAdapter(reporters.Reporter).validate_python(reporter)
    return str(raised.value)


class TestModel:
    @pytest.mark.parametrize("kind", ["jaegerCollector", "zipkin", "otlpHttp", "otlpGrpc"])
    def test_every_sending_reporter_takes_headers_gzip_and_tls(self, kind: str) -> None:
        reporter = _reporter(kind, caFile="/etc/ca.crt", serverName="otel.svc")
        reporter |= {"headers": {"X-Tenant": "shop"}, "headersFrom": {"secretName": "a"}}
        reporter |= {"gzip": True}
        parsed = pydantic.TypeAdapter(reporters.Reporter).validate_python(reporter)
        assert parsed.headers == {"x-tenant": "shop"}  # type: ignore[union-attr]
        assert parsed.gzip is True  # type: ignore[union-attr]
        assert parsed.tls is not None and parsed.tls.server_name == "otel.svc"  # type: ignore[union-attr]

    def test_the_jaeger_collector_does_not_gzip_unless_asked(self) -> None:
        assert reporters.JaegerCollectorReporter(endpoint="http://j/api/traces").gzip is False
        assert reporters.ZipkinReporter(endpoint="http://z/api/v2/spans").gzip is True

    @pytest.mark.parametrize(
        ("tls", "message"),
        [
            ({"ca": CA, "caFile": "/ca"}, "give ca or caFile, not both"),
            ({"cert": CERT, "certFile": "/c"}, "give cert or certFile, not both"),
            ({"certFile": "/c"}, "a client certificate needs its key"),
            ({"key": KEY}, "a client certificate needs its key"),
            ({"insecureSkipVerify": True, "caFile": "/ca"}, "insecureSkipVerify trusts any"),
            ({"caFile": "relative/ca.crt"}, "caFile"),
            ({"ca": "not pem"}, "not PEM text"),
            ({"serverName": "bad name"}, "serverName"),
        ],
    )
    def test_contradictions_are_refused_naming_the_field(
        self, tls: dict[str, Any], message: str
    ) -> None:
        assert message in _problem(_reporter("otlpHttp", **tls))

    def test_tls_needs_an_https_endpoint(self) -> None:
        reporter = {"type": "zipkin", "endpoint": "http://z/api/v2/spans", "tls": {}}
        assert "tls needs an https:// endpoint" in _problem(reporter)

    def test_otlp_grpc_takes_no_path_and_no_insecure_skip_verify(self) -> None:
        with_path = {"type": "otlpGrpc", "endpoint": "http://otel:4317/v1/traces"}
        assert "an otlpGrpc endpoint has no path" in _problem(with_path)
        skipping = _reporter("otlpGrpc", insecureSkipVerify=True)
        assert "otlpGrpc does not support tls.insecureSkipVerify" in _problem(skipping)
        over_http = pydantic.TypeAdapter(reporters.Reporter).validate_python(
            _reporter("otlpHttp", insecureSkipVerify=True)
        )
        assert over_http.tls.insecure_skip_verify is True  # type: ignore[union-attr]

    def test_errors_about_pem_fields_never_echo_the_value(self) -> None:
        huge = KEY + "x" * 70_000  # over the 64 KiB limit of a key
        document = {
            "apiVersion": "gatetrace.dev/v1alpha1",
            "kind": "TracingPolicy",
            "metadata": {"name": "w", "namespace": "edge"},
            "spec": SELECT_GW | {"reporters": [_reporter("otlpHttp", cert=CERT, key=huge)]},
        }
        with pytest.raises(errors.ValidationFailed) as raised:
            loading.parse_policy(document)
        assert "reporters[0].tls.key" in str(raised.value)
        assert "(value redacted)" in str(raised.value)
        assert KEY_LINE not in str(raised.value)


class TestSecretResolution:
    def test_the_secret_fills_ca_cert_and_key(self) -> None:
        asked: list[tuple[str, str]] = []

        def lookup(namespace: str, name: str) -> dict[str, str]:
            asked.append((namespace, name))
            return TLS_SECRET

        before = _result(_reporter(secretName="otel-client", serverName="otel.svc"))
        after = secretrefs.resolve_secrets(before, lookup)
        assert asked == [("edge", "otel-client")]
        tls = after.config.reporters[0].tls  # type: ignore[union-attr]
        assert (tls.ca, tls.cert, tls.key, tls.server_name) == (CA, CERT, KEY, "otel.svc")
        assert after.version != before.version
        assert secretrefs.secret_names(before.config) == ["otel-client"]

    def test_what_the_policy_sets_wins_over_the_secret(self) -> None:
        reporter = _reporter(secretName="otel-client", caFile="/etc/ssl/ca.crt")
        after = secretrefs.resolve_secrets(_result(reporter), lambda ns, n: TLS_SECRET)
        tls = after.config.reporters[0].tls  # type: ignore[union-attr]
        assert (tls.ca, tls.ca_file, tls.cert) == (None, "/etc/ssl/ca.crt", CERT)

    def test_a_secret_with_only_a_ca_is_enough(self) -> None:
        after = secretrefs.resolve_secrets(
            _result(_reporter(secretName="ca-only")), lambda ns, n: {"ca.crt": CA}
        )
        tls = after.config.reporters[0].tls  # type: ignore[union-attr]
        assert (tls.ca, tls.cert, tls.key) == (CA, None, None)

    def test_a_secret_without_tls_entries_is_an_error_naming_the_field(self) -> None:
        with pytest.raises(errors.ValidationFailed) as raised:
            secretrefs.resolve_secrets(
                _result(_reporter(secretName="wrong")), lambda ns, n: {"password": "hunter2"}
            )
        assert "reporters[0].tls.secretName" in str(raised.value)
        assert "holds none of ca.crt, tls.crt, tls.key" in str(raised.value)
        assert "hunter2" not in str(raised.value)

    def test_a_key_without_certificate_is_an_error_without_the_key(self) -> None:
        with pytest.raises(errors.ValidationFailed) as raised:
            secretrefs.resolve_secrets(
                _result(_reporter(secretName="half")), lambda ns, n: {"tls.key": KEY}
            )
        assert "a client certificate needs its key" in str(raised.value)
        assert KEY_LINE not in str(raised.value)

    def test_headers_and_tls_from_secrets_on_the_same_reporter(self) -> None:
        reporter = _reporter("zipkin", secretName="tls") | {"headersFrom": {"secretName": "auth"}}
        reporter["endpoint"] = "https://zipkin:9411/api/v2/spans"
        data = {"tls": TLS_SECRET, "auth": {"authorization": "Bearer t"}}
        after = secretrefs.resolve_secrets(_result(reporter), lambda ns, n: data[n])
        resolved = after.config.reporters[0]
        assert resolved.headers == {"authorization": "Bearer t"}  # type: ignore[union-attr]
        assert resolved.tls.key == KEY  # type: ignore[union-attr]

    def test_every_human_rendering_hides_the_pem_material(self) -> None:
        result = secretrefs.resolve_secrets(
            _result(_reporter(secretName="otel-client", serverName="otel.svc")),
            lambda ns, n: TLS_SECRET,
        )
        assert KEY_LINE in json.dumps(effective.wire_config(result.config))  # the PUT needs it
        for text in (
            json.dumps(redaction.redact(result.config)),
            json.dumps(redaction.redact(effective.wire_config(result.config))),
            cli.explain_json(result),
            cli.render_explanation(result, None),
        ):
            assert KEY_LINE not in text
            assert "Y2xpZW50" not in text
        tls = redaction.redact(result.config)["reporters"][0]["tls"]
        assert tls == {
            "secretName": "otel-client",
            "ca": redaction.REDACTED,
            "cert": redaction.REDACTED,
            "key": redaction.REDACTED,
            "serverName": "otel.svc",
            "insecureSkipVerify": False,
        }
