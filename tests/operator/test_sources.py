"""The policies a config came from (``sources``) reach the gateway both ways the operator
delivers: in the push body and in the ConfigMap document the gateway's file watcher reads,
so ``GET /admin/v1/tracing`` (and the trace page's sources table) can show them."""

import json
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from gatetrace.gateway import state, tracing_apply, tracing_file
from gatetrace.operator import core, delivery, planner, standalone
from gatetrace.policy import admin_protocol
from gatetrace.runtime import metrics
from tests.operator import gateways as gw
from tests.operator import policydocs

pytestmark = pytest.mark.timeout(30)

EXPECTED = [
    {"namespace": "gatetrace-system", "name": "cluster-default"},
    {"namespace": "shop", "name": "team"},
]


@pytest.fixture
async def client() -> AsyncIterator[delivery.AdminClient]:
    admin_client = delivery.AdminClient(lambda: gw.TOKEN)
    yield admin_client
    await admin_client.close()


async def _converge(tmp_path: pathlib.Path, client: delivery.AdminClient, url: str) -> pathlib.Path:
    pusher = delivery.Pusher(client, retry=delivery.RetryPolicy(attempts=1, timeout=2.0))
    reconciler = core.Reconciler(
        standalone.FileSink(config_dir=tmp_path), pusher, planner.IndexPlanner("gatetrace-system")
    )
    reconciler.upsert_pod(standalone.GatewaySpec("gw", url, "shop").pod())
    default = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.25}}}
    reconciler.upsert_policy(policydocs.record("gatetrace-system", "cluster-default", default))
    reconciler.upsert_policy(policydocs.record("shop", "team", {"tags": {"team": "shop"}}))
    await reconciler.converge()
    return tmp_path / "shop.gw.json"  # the FileSink's name for gateway shop/gw


async def test_the_push_carries_the_sources_to_get_tracing(
    tmp_path: pathlib.Path, client: delivery.AdminClient
) -> None:
    async with gw.gateways(1) as gateways:
        await _converge(tmp_path, client, gateways[0].url)
        current = gateways[0].holder.current
        assert current is not None
        assert [dict(s) for s in current.sources] == EXPECTED
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                gateways[0].url + admin_protocol.TRACING_PATH,
                headers={"Authorization": f"Bearer {gw.TOKEN}"},
            ) as response,
        ):
            assert (await response.json())["sources"] == EXPECTED


async def test_the_configmap_document_carries_the_sources_to_the_file_watcher(
    tmp_path: pathlib.Path, client: delivery.AdminClient
) -> None:
    async with gw.gateways(1) as gateways:
        written = await _converge(tmp_path, client, gateways[0].url)
    assert json.loads(written.read_text())["sources"] == EXPECTED
    holder = state.TracingHolder()
    registry = metrics.Registry()
    applier = tracing_apply.Applier(holder, service="gw", registry=registry)
    watcher = tracing_file.TracingFileWatcher(written, applier, registry=registry)
    assert await watcher.check() == "applied"
    assert holder.current is not None
    assert [dict(s) for s in holder.current.sources] == EXPECTED


def test_the_protocol_names_a_source_by_namespace_and_name() -> None:
    class Ref:
        def __init__(self, namespace: str, name: str) -> None:
            self.namespace, self.name = namespace, name

    entries = admin_protocol.source_entries([Ref("a", "b"), Ref("c", "d")])
    assert entries == ({"namespace": "a", "name": "b"}, {"namespace": "c", "name": "d"})
    body = admin_protocol.put_body(3, {"x": 1}, entries)
    assert body == {"revision": 3, "config": {"x": 1}, "sources": list(entries)}
    assert admin_protocol.parse_put(body).sources == entries
    assert "sources" not in admin_protocol.put_body(3, {})  # an old operator's body still parses
    assert admin_protocol.parse_put(admin_protocol.put_body(3, {})).sources == ()
