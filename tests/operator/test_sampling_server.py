"""The Jaeger remote sampling API: served from the reconciler's policies over real HTTP
on 127.0.0.1, both paths, ETag/304, live updates, bad requests, service conflicts."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gatetrace.operator import (
    conditions,
    core,
    delivery,
    planner,
    records,
    sampling_server,
    standalone,
)
from tests import loopback

ROOT = "gatetrace-system"


def _policy(namespace: str, name: str, spec: dict[str, Any], created: str) -> dict[str, Any]:
    return {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "uid": f"{namespace}-{name}",
            "creationTimestamp": created,
        },
        "spec": spec,
    }


def _service(name: str, rate: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "sampler": {"type": "probabilistic", "rate": rate}, **extra}


@pytest.fixture
async def served() -> AsyncIterator[tuple[core.Reconciler, str, aiohttp.ClientSession]]:
    client = delivery.AdminClient(lambda: "t")
    reconciler = core.Reconciler(
        standalone.FileSink(),
        delivery.Pusher(client),
        planner.IndexPlanner(ROOT),
        root_namespace=ROOT,
    )
    server = sampling_server.StrategyServer(reconciler, ROOT)
    async with (
        loopback.serving(server.app(), **sampling_server.RUNNER_ARGS) as url,
        aiohttp.ClientSession() as http,
    ):
        yield reconciler, url, http
    await client.close()


async def _get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, Any]:
    async with http.get(url, headers=headers) as resp:
        body = await resp.json() if resp.status == 200 else await resp.text()
        return resp.status, body, resp.headers


async def test_both_paths_answer_jaegers_json_and_follow_policy_changes(
    served: tuple[core.Reconciler, str, aiohttp.ClientSession],
) -> None:
    reconciler, url, http = served
    root = _policy(
        ROOT,
        "default",
        {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.05}}},
        "2026-01-01T00:00:00Z",
    )
    reconciler.upsert_policy(records.record_from_object(root))
    ops = [{"operation": "GET /health", "probability": 0.0}]
    shop = _policy(
        "shop",
        "p",
        {"services": [_service("checkout", 0.5, operations=ops)]},
        "2026-01-02T00:00:00Z",
    )
    reconciler.upsert_policy(records.record_from_object(shop))
    for path in ("/sampling", "/api/sampling"):
        status, body, headers = await _get(http, f"{url}{path}?service=checkout")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert body["strategyType"] == 0
        assert body["probabilisticSampling"] == {"samplingRate": 0.5}
        assert body["operationSampling"]["perOperationStrategies"] == [
            {"operation": "GET /health", "probabilisticSampling": {"samplingRate": 0.0}}
        ]
        assert headers["Cache-Control"] == "no-cache" and headers["ETag"].startswith('"')
    status, body, _ = await _get(http, f"{url}/sampling?service=someone-else")
    assert body == {"strategyType": 0, "probabilisticSampling": {"samplingRate": 0.05}}
    limited = {"name": "checkout", "sampler": {"type": "rateLimiting", "tracesPerSecond": 4}}
    shop["metadata"]["generation"] = 2
    shop["spec"]["services"] = [limited]
    reconciler.upsert_policy(records.record_from_object(shop))
    status, body, _ = await _get(http, f"{url}/sampling?service=checkout")
    assert body == {"strategyType": 1, "rateLimitingSampling": {"maxTracesPerSecond": 4}}
    reconciler.delete_policy(records.record_from_object(shop).ref)
    status, body, _ = await _get(http, f"{url}/sampling?service=checkout")
    assert body["probabilisticSampling"] == {"samplingRate": 0.05}


async def test_an_unchanged_strategy_is_a_304_until_the_policy_changes(
    served: tuple[core.Reconciler, str, aiohttp.ClientSession],
) -> None:
    reconciler, url, http = served
    doc = _policy("shop", "p", {"services": [_service("cart", 0.3)]}, "2026-01-02T00:00:00Z")
    reconciler.upsert_policy(records.record_from_object(doc))
    _, _, headers = await _get(http, f"{url}/sampling?service=cart")
    etag = headers["ETag"]
    async with http.get(f"{url}/sampling?service=cart", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304 and await resp.read() == b"" and resp.headers["ETag"] == etag
    async with http.get(
        f"{url}/sampling?service=cart", headers={"If-None-Match": f'"other", W/{etag}'}
    ) as resp:
        assert resp.status == 304
    doc["metadata"]["generation"] = 2
    doc["spec"]["services"] = [_service("cart", 0.4)]
    reconciler.upsert_policy(records.record_from_object(doc))
    status, body, headers = await _get(
        http, f"{url}/sampling?service=cart", **{"If-None-Match": etag}
    )
    assert status == 200 and headers["ETag"] != etag
    assert body["probabilisticSampling"] == {"samplingRate": 0.4}


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "'service' parameter must be provided once"),
        ("?service=", "'service' parameter must be provided once"),
        ("?service=a&service=b", "'service' parameter must be provided once"),
        ("?service=" + "x" * 10_000, "10000 characters, the limit is 256"),
    ],
)
async def test_bad_requests_are_400_naming_the_parameter(
    served: tuple[core.Reconciler, str, aiohttp.ClientSession], query: str, problem: str
) -> None:
    _, url, http = served
    status, body, _ = await _get(http, f"{url}/sampling{query}")
    assert status == 400 and problem in body


async def test_the_newer_policy_naming_a_service_is_conflicted(
    served: tuple[core.Reconciler, str, aiohttp.ClientSession],
) -> None:
    reconciler, url, http = served
    older = records.record_from_object(
        _policy("a", "older", {"services": [_service("checkout", 0.1)]}, "2026-01-01T00:00:00Z")
    )
    newer = records.record_from_object(
        _policy("b", "newer", {"services": [_service("checkout", 0.9)]}, "2026-02-01T00:00:00Z")
    )
    reconciler.upsert_policy(newer)
    reconciler.upsert_policy(older)
    _, body, _ = await _get(http, f"{url}/sampling?service=checkout")
    assert body["probabilisticSampling"] == {"samplingRate": 0.1}
    losses = reconciler.service_losses()
    assert losses == {"b/newer": [("checkout", "a/older")]}
    status_doc, events = conditions.policy_status(
        newer, {}, {}, previous={}, now=0, service_losses=losses["b/newer"]
    )
    conflicted = next(c for c in status_doc["conditions"] if c["type"] == "Conflicted")
    assert conflicted["status"] == "True"
    assert "a/older wins for service checkout" in conflicted["message"]
    assert any(e[1] == "Conflicted" for e in events)
