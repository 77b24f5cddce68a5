"""The operator reads a reporter's TLS material from a Secret (``tls.secretName``) as it
reads ``headersFrom``: only Secrets that opted in as reporter credentials, problems named
by field and never echoing a value, and the ConfigMap never holding the material.

The Kubernetes API is a small aiohttp app on 127.0.0.1 serving Secrets.
"""

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client as k8s

from gatetrace.operator import handlers, kube, settings
from gatetrace.policy import loading
from tests.operator import fakeapi

CA = "-----BEGIN CERTIFICATE-----\nQ0EtY2VydA==\n-----END CERTIFICATE-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
KEY_LINE = "c2VjcmV0LWtleS1tYXRlcmlhbA=="
OPTED_IN = {kube.CREDENTIALS_LABEL: "true"}
SECRETS: dict[str, tuple[dict[str, str], dict[str, bytes]]] = {
    "otel-client": (
        OPTED_IN,
        {"ca.crt": CA.encode(), "tls.crt": CERT.encode(), "tls.key": KEY.encode()},
    ),
    "otel-auth": (OPTED_IN, {"authorization": b"Bearer t0ken"}),
    "not-opted-in": ({}, {"tls.key": KEY.encode()}),
    "no-tls-entries": (OPTED_IN, {"password": b"hunter2"}),
    "binary-key": (OPTED_IN, {"tls.key": b"\xff\xfe" + KEY.encode()}),
}


async def _secret(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in SECRETS:
        return web.json_response({"kind": "Status", "code": 404}, status=404)
    labels, data = SECRETS[name]
    meta = {"name": name, "namespace": request.match_info["namespace"], "labels": labels}
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return web.json_response(
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}
    )


@pytest.fixture
async def api() -> AsyncIterator[k8s.ApiClient]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/secrets/{name}", _secret)
    async with fakeapi.serving(app) as client:
        yield client


def _policy(tls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    reporter = {"type": "otlpGrpc", "endpoint": "https://otel.observability:4317", "tls": tls}
    return {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "team", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {"reporters": [reporter | extra]},
    }


async def test_the_secret_material_lands_in_the_policy_and_validates(
    api: k8s.ApiClient,
) -> None:
    body, names, errors = await kube.resolve_secrets(
        api,
        _policy({"secretName": "otel-client"}, headersFrom={"secretName": "otel-auth"}),
    )
    assert errors == []
    assert names == ["otel-auth", "otel-client"]
    reporter = body["spec"]["reporters"][0]
    assert reporter["tls"] == {"secretName": "otel-client", "ca": CA, "cert": CERT, "key": KEY}
    assert reporter["headers"] == {"authorization": "Bearer t0ken"}
    parsed = loading.parse_policy(body)
    assert parsed.spec.reporters[0].tls.key == KEY  # type: ignore[union-attr]


async def test_the_policys_own_files_win_over_the_secret(api: k8s.ApiClient) -> None:
    tls = {"secretName": "otel-client", "caFile": "/etc/ssl/certs/ca.crt"}
    body, _, errors = await kube.resolve_secrets(api, _policy(tls))
    assert errors == []
    assert body["spec"]["reporters"][0]["tls"] == {**tls, "cert": CERT, "key": KEY}


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not-opted-in", "Secret shop/not-opted-in has not opted in as reporter credentials"),
        ("no-tls-entries", "holds none of ca.crt, tls.crt, tls.key"),
        ("missing", "Secret shop/missing: Not Found (404)"),
        ("binary-key", "key 'tls.key' is not UTF-8 text"),
    ],
)
async def test_problems_name_the_field_and_never_the_values(
    api: k8s.ApiClient, secret: str, message: str
) -> None:
    state = handlers.OperatorState(settings.OperatorSettings(), api)
    ref = await state.ingest_policy(_policy({"secretName": secret}))
    record = state.reconciler.policies[ref]
    assert record.in_force() is None  # never valid: contributes nothing
    found = [m for where, m in record.errors if where == "spec.reporters[0].tls.secretName"]
    assert found and message in found[0], record.errors
    assert KEY_LINE not in str(record.errors) and "hunter2" not in str(record.errors)


def test_the_configmap_never_holds_the_material() -> None:
    config = {
        "reporters": [
            {
                "type": "otlpGrpc",
                "endpoint": "https://otel:4317",
                "tls": {"secretName": "otel-client", "ca": CA, "cert": CERT, "key": KEY},
            },
            {
                "type": "otlpHttp",
                "endpoint": "https://otel:4318/v1/traces",
                "tls": {"cert": CERT, "key": KEY, "serverName": "otel.svc"},
            },
            {
                "type": "zipkin",
                "endpoint": "https://zipkin/api/v2/spans",
                "tls": {"ca": CA, "caFile": None},
            },
        ]
    }
    stored = kube.configmap_payload(config)
    text = json.dumps(stored)
    assert KEY_LINE not in text and "Y2xpZW50" not in text
    assert stored["reporters"][0]["tls"] == {"secretName": "otel-client"}
    assert stored["reporters"][1]["tls"] == {"serverName": "otel.svc"}
    assert stored["reporters"][2]["tls"]["ca"] == CA  # a CA alone is no credential
    assert config["reporters"][0]["tls"]["key"] == KEY  # the push still carries it
