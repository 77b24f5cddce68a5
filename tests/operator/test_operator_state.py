"""The kopf handlers' shared state: a periodic Secret re-read racing a deletion,
pods losing their label, deletions missed while kopf peering paused the replica.

The Kubernetes API here is a small aiohttp app on 127.0.0.1 answering only the
reads the operator makes (Secrets, the policy and pod listings), so a read can
be held while the policy goes, and the listing can change.
"""

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client as k8s

from gatetrace.operator import handlers, plan, settings
from tests.operator import fakeapi

SECRET = "otlp-auth"


class SecretsApi:
    """GET /api/v1/namespaces/{ns}/secrets/{name}: the OTLP Secret (held while
    ``release`` is clear), 404 for any other."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.policies: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.listing = asyncio.Event()
        self.release_listing = asyncio.Event()
        self.release_listing.set()

    async def list_policies(self, _request: web.Request) -> web.Response:
        items = list(self.policies)  # the state when the request arrived
        self.listing.set()
        await self.release_listing.wait()
        return web.json_response({"kind": "TracingPolicyList", "items": items})

    async def list_pods(self, request: web.Request) -> web.Response:
        assert request.query.get("labelSelector") == "gatetrace.dev/gateway"
        body = {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": self.pods}
        return web.json_response(body)

    async def secret(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in SECRETS:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        self.asked.set()
        await self.release.wait()
        labels, data = SECRETS[name]
        meta = {"name": name, "namespace": request.match_info["namespace"], "labels": labels}
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        return web.json_response(
            {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}
        )


OPTED_IN = {"gatetrace.dev/reporter-credentials": "true"}
SECRETS: dict[str, tuple[dict[str, str], dict[str, bytes]]] = {
    SECRET: (OPTED_IN, {"authorization": b"Bearer t0ken"}),
    # made with --from-file: the value ends in a newline
    "from-file": (OPTED_IN, {"Authorization": b"Bearer f1le\n"}),
    "db-password": ({}, {"password": b"hunter2"}),  # never opted in
    "half-labelled": ({"gatetrace.dev/reporter-credentials": "yes"}, {"x-key": b"k"}),
    "crlf": (OPTED_IN, {"x-key": b"a\r\nX-Injected: 1"}),
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[SecretsApi, k8s.ApiClient]]:
    fake = SecretsApi()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/secrets/{name}", fake.secret)
    app.router.add_get("/apis/gatetrace.dev/v1alpha1/tracingpolicies", fake.list_policies)
    app.router.add_get("/api/v1/pods", fake.list_pods)
    async with fakeapi.serving(app) as client:
        yield fake, client


def _policy(secret: str = SECRET) -> dict[str, Any]:
    return {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "team", "namespace": "shop", "uid": "u1", "generation": 1},
        "spec": {
            "reporters": [
                {
                    "type": "otlpHttp",
                    "endpoint": "http://otel.observability:4318/v1/traces",
                    "headersFrom": {"secretName": secret},
                }
            ]
        },
    }


async def test_a_secret_refresh_does_not_bring_back_a_deleted_policy(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    fake, client = api
    state = handlers.OperatorState(settings.OperatorSettings(), client)
    ref = await state.ingest_policy(_policy())
    assert ref == plan.PolicyRef("shop", "team")
    assert ref in state.reconciler.policies

    fake.release.clear()
    fake.asked.clear()
    refresh = asyncio.create_task(state.refresh_secrets())  # the drift timer's re-read
    await asyncio.wait_for(fake.asked.wait(), 10)
    state.forget_policy(ref)  # kubectl delete: the finalizer handler runs meanwhile
    fake.release.set()
    await asyncio.wait_for(refresh, 10)

    assert ref not in state.reconciler.policies
    assert ref not in state.bodies


def _pod_event(type_: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "type": type_,
        "object": {
            "metadata": {"name": "gw-0", "namespace": "shop", "uid": "p1", "labels": labels},
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.7",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
    }


async def test_a_pod_that_loses_its_gateway_label_is_no_target_any_more(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    _, client = api
    state = handlers.OperatorState(settings.OperatorSettings(), client)
    gateway = {"gatetrace.dev/gateway": "edge", "app": "gw"}
    assert state.observe_pod(_pod_event("ADDED", gateway))
    assert not state.observe_pod(_pod_event("MODIFIED", gateway))  # nothing new
    assert "shop/gw-0" in state.reconciler.pods
    assert state.observe_pod(_pod_event("MODIFIED", {"app": "gw"}))  # label removed
    assert "shop/gw-0" not in state.reconciler.pods
    assert not state.observe_pod(_pod_event("MODIFIED", {"app": "other"}))  # any other pod
    assert not state.observe_pod(_pod_event("DELETED", {"app": "gw"}))


async def test_deletions_missed_while_paused_are_dropped_when_active_again(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    """kopf peering pauses a standby replica after its start-up listing; when it
    takes over, kopf reports only the objects that exist. What was deleted
    meanwhile must not stay a policy or a target."""
    fake, client = api
    state = handlers.OperatorState(settings.OperatorSettings(drift_interval=30.0), client)
    pod = _pod_event("ADDED", {"gatetrace.dev/gateway": "edge"})["object"]
    fake.policies, fake.pods = [_policy()], [pod]
    await state.prefill()  # start-up, then paused
    ref = plan.PolicyRef("shop", "team")
    assert ref in state.reconciler.policies and "shop/gw-0" in state.reconciler.pods

    fake.policies, fake.pods = [], []  # deleted while the other replica acted
    await state.resync_if_stale()  # soon after the listing: nothing to do
    assert ref in state.reconciler.policies
    state.synced_at -= 31.0  # the pause outlasted a drift interval
    await state.resync_if_stale()  # the first handler call after the takeover
    assert ref not in state.reconciler.policies
    assert "shop/gw-0" not in state.reconciler.pods


async def test_a_policy_created_again_during_the_listing_is_kept(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    fake, client = api
    state = handlers.OperatorState(settings.OperatorSettings(), client)
    fake.policies = [_policy()]
    await state.prefill()
    fake.policies = []  # deleted ...
    fake.release_listing.clear()
    fake.listing.clear()
    pruning = asyncio.create_task(state.prefill(prune=True))
    await asyncio.wait_for(fake.listing.wait(), 10)  # the listing is answered now
    newer = _policy()
    newer["metadata"] = {**newer["metadata"], "uid": "u2"}
    await state.ingest_policy(newer)  # ... and created again: the handler runs meanwhile
    fake.release_listing.set()
    await asyncio.wait_for(pruning, 10)
    assert state.reconciler.policies[plan.PolicyRef("shop", "team")].uid == "u2"
    assert plan.PolicyRef("shop", "team") in state.bodies


async def test_only_secrets_labelled_as_reporter_credentials_are_used(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    _, client = api
    state = handlers.OperatorState(settings.OperatorSettings(), client)
    for name in ("db-password", "half-labelled"):
        ref = await state.ingest_policy(_policy(name))
        record = state.reconciler.policies[ref]
        assert record.in_force() is None  # invalid, never valid: contributes nothing
        (message,) = [m for where, m in record.errors if "headersFrom" in where]
        assert f"Secret shop/{name} has not opted in" in message
        assert 'gatetrace.dev/reporter-credentials="true"' in message
        assert "hunter2" not in str(record.errors)
        state.forget_policy(ref)


async def test_secret_values_are_stripped_and_validated_as_header_values(
    api: tuple[SecretsApi, k8s.ApiClient],
) -> None:
    _, client = api
    state = handlers.OperatorState(settings.OperatorSettings(), client)
    ref = await state.ingest_policy(_policy("from-file"))
    record = state.reconciler.policies[ref]
    assert not record.errors
    reporter = record.body["spec"]["reporters"][0]
    assert reporter["headers"] == {"authorization": "Bearer f1le"}

    ref = await state.ingest_policy(_policy("crlf"))
    record = state.reconciler.policies[ref]
    (where, message), *_ = record.errors
    assert where == "spec.reporters[0].headers.x-key"
    assert "CR, LF" in message
    assert "Injected" not in str(record.errors)
