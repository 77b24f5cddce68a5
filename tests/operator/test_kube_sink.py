"""The per-gateway ConfigMap written by KubeSink, against a small aiohttp app on
127.0.0.1 that keeps ConfigMaps the way the API server does (PATCH of a missing
one is 404, POST creates it)."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client as k8s

from gatetrace.operator import core, kube
from tests.operator import fakeapi


class ConfigMapsApi:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions = 0

    def _keep(self, key: tuple[str, str], body: dict[str, Any]) -> web.Response:
        self.versions += 1
        body["metadata"]["resourceVersion"] = str(self.versions)
        self.stored[key] = body
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap", **body})

    async def read(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.stored:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap", **self.stored[key]})

    async def patch(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.stored:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        body = await request.json()
        precondition = body["metadata"].get("resourceVersion")
        if precondition and precondition != self.stored[key]["metadata"]["resourceVersion"]:
            return web.json_response({"kind": "Status", "code": 409}, status=409)
        return self._keep(key, body)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        return self._keep((request.match_info["namespace"], body["metadata"]["name"]), body)


@pytest.fixture
async def api() -> AsyncIterator[tuple[ConfigMapsApi, k8s.ApiClient]]:
    fake = ConfigMapsApi()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/configmaps/{name}", fake.read)
    app.router.add_patch("/api/v1/namespaces/{namespace}/configmaps/{name}", fake.patch)
    app.router.add_post("/api/v1/namespaces/{namespace}/configmaps", fake.create)
    async with fakeapi.serving(app) as client:
        yield fake, client


async def test_a_configmap_deleted_by_hand_is_written_again_after_the_drift_check(
    api: tuple[ConfigMapsApi, k8s.ApiClient],
) -> None:
    fake, client = api
    sink = kube.KubeSink(client)
    config = {"sampling": {"sampler": {"type": "const", "decision": True}}}
    await sink.store_config(("shop", "edge"), 3, "v3", config, combined="c3")
    stored = fake.stored[("shop", "gatetrace-edge")]
    assert stored["metadata"]["annotations"][kube.REVISION_ANNOTATION] == "3"

    del fake.stored[("shop", "gatetrace-edge")]  # kubectl delete configmap
    await sink.store_config(("shop", "edge"), 3, "v3", config, combined="c3")
    assert ("shop", "gatetrace-edge") not in fake.stored  # unchanged here: not rewritten
    sink.forget_written()  # the drift timer
    await sink.store_config(("shop", "edge"), 3, "v3", config, combined="c3")
    assert (
        fake.stored[("shop", "gatetrace-edge")]["data"][kube.CONFIG_KEY]
        == stored["data"][kube.CONFIG_KEY]
    )


async def test_the_configmap_names_the_policies_the_config_came_from(
    api: tuple[ConfigMapsApi, k8s.ApiClient],
) -> None:
    fake, client = api
    sink = kube.KubeSink(client)
    sources = [
        {"namespace": "gatetrace-system", "name": "default"},
        {"namespace": "shop", "name": "x"},
    ]
    await sink.store_config(("shop", "edge"), 1, "v1", {}, combined="c1", sources=sources)
    document = json.loads(fake.stored[("shop", "gatetrace-edge")]["data"][kube.CONFIG_KEY])
    assert document["sources"] == sources
    # the same config from other policies is a new ConfigMap content
    await sink.store_config(("shop", "edge"), 1, "v1", {}, combined="c1", sources=sources[:1])
    document = json.loads(fake.stored[("shop", "gatetrace-edge")]["data"][kube.CONFIG_KEY])
    assert document["sources"] == sources[:1]


async def test_a_configmap_the_operator_did_not_create_is_never_overwritten(
    api: tuple[ConfigMapsApi, k8s.ApiClient],
) -> None:
    fake, client = api
    sink = kube.KubeSink(client)
    foreign = {"metadata": {"name": "gatetrace-edge", "labels": {"app": "theirs"}}, "data": {}}
    fake.stored[("shop", "gatetrace-edge")] = foreign | {}
    foreign["metadata"]["resourceVersion"] = "0"
    config = {"sampling": {"sampler": {"type": "const", "decision": True}}}
    with pytest.raises(
        core.SinkRefusedError, match=r"ConfigMap shop/gatetrace-edge exists and was not"
    ):
        await sink.store_config(("shop", "edge"), 1, "v1", config, combined="c1")
    assert fake.stored[("shop", "gatetrace-edge")]["data"] == {}

    # labelled as another gateway's: refused too
    fake.stored[("shop", "gatetrace-edge")]["metadata"]["labels"] = {
        **kube.MANAGED_BY,
        "gatetrace.dev/gateway": "other",
    }
    with pytest.raises(core.SinkRefusedError):
        await sink.store_config(("shop", "edge"), 1, "v1", config, combined="c1")

    # its own is patched, conditionally on the version it read
    del fake.stored[("shop", "gatetrace-edge")]
    await sink.store_config(("shop", "edge"), 1, "v1", config, combined="c1")
    sink.forget_written()
    await sink.store_config(("shop", "edge"), 2, "v2", config, combined="c2")
    stored = fake.stored[("shop", "gatetrace-edge")]
    assert stored["metadata"]["annotations"][kube.REVISION_ANNOTATION] == "2"
