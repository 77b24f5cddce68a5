"""The per-gateway ConfigMap written by KubeSink, against a small aiohttp app on
127.0.0.1 that keeps ConfigMaps the way the API server does (PATCH of a missing
one is 404, POST creates it)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client as k8s

from gatetrace.operator import kube
from tests.operator import fakeapi


class ConfigMapsApi:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}

    async def patch(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.stored:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        self.stored[key] = await request.json()
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap", **self.stored[key]})

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.stored[(request.match_info["namespace"], body["metadata"]["name"])] = body
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap", **body}, status=201)


@pytest.fixture
async def api() -> AsyncIterator[tuple[ConfigMapsApi, k8s.ApiClient]]:
    fake = ConfigMapsApi()
    app = web.Application()
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
