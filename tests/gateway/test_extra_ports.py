"""The gateway's optional ports: metrics for a scraper (``metrics.listen``) and the
read-only query API for Jaeger UI / Grafana (``queryApi.listen``), each serving only
its own routes; what ``/metrics`` holds, read back by prometheus_client's parser."""

import contextlib
import platform
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import process_collector
from prometheus_client.parser import text_string_to_metric_families
from serverharness import AUTH, running, settings_for, upstream, wait_for

import gatetrace
from gatetrace.gateway import server
from gatetrace.runtime import metrics

pytestmark = pytest.mark.timeout(60)

ERRORS_KEPT_TWICE_A_SECOND = {
    "sampling": {
        "sampler": {"type": "const", "decision": False},
        "prioritize": {"errors": True, "maxPerSecond": 2},
    },
    "reporters": [{"type": "memory"}],
}

Families = dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def _parse(text: str) -> Families:
    families: Families = {}
    for family in text_string_to_metric_families(text):
        assert family.type in {"counter", "gauge", "histogram"}, family.name
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families


async def _scrape(http: aiohttp.ClientSession, url: str) -> Families:
    async with http.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return _parse(await response.text())


@contextlib.asynccontextmanager
async def _started(up: str, **extra: Any) -> AsyncIterator[tuple[server.Gateway, Any]]:
    settings = settings_for(
        up,
        metrics={"listen": "127.0.0.1:0"},
        queryApi={"listen": "127.0.0.1:0"},
        **extra,
    )
    async with running(settings) as (gw, http):
        yield gw, http


async def test_the_metrics_port_serves_metrics_and_probes_without_a_token() -> None:
    async with upstream() as up, _started(up) as (gw, http):
        url = gw.metrics_url
        assert url is not None and url != gw.admin_url
        families = await _scrape(http, url)
        # the same registries as the admin port's /metrics
        assert set(families) == set(await _scrape(http, gw.admin_url))
        assert (await http.get(url + "/healthz")).status == 200
        assert (await http.get(url + "/readyz")).status == 503  # no tracing config
        for path in ("/admin/v1/tracing", "/api/services", "/ui/"):
            response = await http.get(url + path, headers=AUTH)
            assert response.status == 404, path


async def test_build_info_and_process_metrics_agree_with_prometheus_client() -> None:
    async with upstream() as up, _started(up) as (gw, http):
        assert gw.metrics_url is not None
        families = await _scrape(http, gw.metrics_url)
        build = families["gatetrace_build_info"]
        labels = (("python", platform.python_version()), ("version", gatetrace.__version__))
        assert build == {("gatetrace_build_info", labels): 1.0}
        theirs = {
            s.name: s.value
            for family in process_collector.ProcessCollector(registry=None).collect()
            for s in family.samples
        }
        ours = {
            name: next(iter(families[name].values()))
            for name in (
                "process_cpu_seconds",
                "process_start_time_seconds",
                "process_max_fds",
                "process_open_fds",
                "process_resident_memory_bytes",
                "process_virtual_memory_bytes",
            )
        }
        assert ours["process_start_time_seconds"] == pytest.approx(
            theirs["process_start_time_seconds"], abs=0.02
        )
        assert ours["process_max_fds"] == theirs["process_max_fds"]
        # read before theirs: at most as much (they sum utime/ticks + stime/ticks, we
        # (utime + stime)/ticks: a float rounding apart)
        assert 0 < ours["process_cpu_seconds"] <= theirs["process_cpu_seconds_total"] + 1e-9
        assert ours["process_resident_memory_bytes"] == pytest.approx(
            theirs["process_resident_memory_bytes"], rel=0.2
        )
        assert ours["process_virtual_memory_bytes"] == pytest.approx(
            theirs["process_virtual_memory_bytes"], rel=0.2
        )
        assert 5 < ours["process_open_fds"] <= theirs["process_open_fds"] + 5
        assert ours["process_start_time_seconds"] < time.time()


async def test_priority_upgrades_and_budget_exhaustion_are_counted() -> None:
    async with upstream() as up:
        routes = [
            {"name": "users", "prefix": "/api/users", "upstream": up},
            {"name": "dead", "prefix": "/dead", "upstream": "http://127.0.0.1:1"},
        ]
        async with _started(up, tracing=ERRORS_KEPT_TWICE_A_SECOND, routes=routes) as (gw, http):
            await http.get(gw.proxy_url + "/api/users/ok")
            for _ in range(4):  # nothing listens upstream: 502, an error kept by priority
                async with http.get(gw.proxy_url + "/dead/x") as response:
                    assert response.status >= 500
            assert gw.metrics_url is not None
            families = await _scrape(http, gw.metrics_url)
            upgraded = families["gatetrace_priority_upgrades"]
            exhausted = families["gatetrace_priority_budget_exhausted"]
            assert upgraded == {("gatetrace_priority_upgrades_total", (("reason", "error"),)): 2}
            assert exhausted == {
                ("gatetrace_priority_budget_exhausted_total", (("reason", "error"),)): 2
            }
            await wait_for(lambda: len(gw.store.services()) == 1)


async def test_request_latency_buckets_reach_the_longest_route_timeout() -> None:
    async with upstream() as up:
        routes = [
            {"name": "users", "prefix": "/api/users", "upstream": up},
            {"name": "slow", "prefix": "/slow", "upstream": up, "timeoutMs": 120_000},
        ]
        async with _started(up, routes=routes) as (gw, http):
            await http.get(gw.proxy_url + "/api/users/1")
            assert gw.metrics_url is not None
            families = await _scrape(http, gw.metrics_url)
            bounds = sorted(
                float(dict(labels)["le"])
                for name, labels in families["gatetrace_gateway_request_duration_seconds"]
                if name.endswith("_bucket")
            )
            assert bounds[-2:] == [122.0, float("inf")]  # connect 2 s + timeout 120 s
            assert {5.0, 10.0, 25.0, 50.0, 100.0} <= set(bounds)
            assert bounds[:-1] == sorted(metrics.latency_buckets(122.0))


async def test_the_query_port_serves_queries_and_the_page_without_a_token_and_nothing_else() -> (
    None
):
    async with upstream() as up:
        always = {"sampling": {"sampler": {"type": "const", "decision": True}}}
        async with _started(up, tracing=always) as (gw, http):
            url = gw.query_url
            assert url is not None and url not in (gw.admin_url, gw.metrics_url)
            response = await http.get(gw.proxy_url + "/api/users/1")
            trace_id = response.headers["X-Trace-Id"]
            await wait_for(lambda: len(gw.store) >= 2)
            assert (await (await http.get(url + "/api/services")).json())["data"] == ["edge"]
            found = await http.get(f"{url}/api/traces/{trace_id}")
            assert found.status == 200
            assert len((await found.json())["data"][0]["spans"]) == 2
            deps = await http.get(url + "/api/dependencies?endTs=99999999999999&lookback=1")
            assert deps.status == 200
            assert (await http.get(url + "/ui/")).status == 200
            # the page learns which port it is on: no login form here, the usual one there
            assert await (await http.get(url + "/ui/mode.json")).json() == {"readOnly": True}
            admin_mode = await http.get(gw.admin_url + "/ui/mode.json")
            assert await admin_mode.json() == {"readOnly": False}
            # never an admin route, not even with the token
            for method, path in [
                ("GET", "/admin/v1/tracing"),
                ("PUT", "/admin/v1/tracing"),
                ("GET", "/metrics"),
                ("GET", "/healthz"),
            ]:
                response = await http.request(method, url + path, headers=AUTH, json={})
                assert response.status in (404, 405), (method, path)
            # the admin port still wants its token for the same query
            assert (await http.get(gw.admin_url + "/api/services")).status == 401


async def test_without_the_extra_ports_only_proxy_and_admin_listen() -> None:
    async with upstream() as up, running(settings_for(up)) as (gw, http):
        assert (gw.metrics_url, gw.query_url) == (None, None)
        assert gw.side_addresses == {}
        response = await http.get(gw.admin_url + "/metrics")
        assert response.headers["Content-Type"] == metrics.CONTENT_TYPE


async def test_a_taken_metrics_port_is_a_startup_error_naming_the_field() -> None:
    async with upstream() as up:
        port = int(up.rsplit(":", 1)[1])
        settings = settings_for(up, metrics={"listen": f"127.0.0.1:{port}"})
        gw = server.Gateway(settings, token="t")
        with pytest.raises(server.StartupError, match=r"cannot listen \(metrics\.listen\)"):
            await gw.start()
        assert gw.side_addresses == {}
