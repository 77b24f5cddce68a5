"""The gateway process: both apps on their ports, config loading order (tracing file,
bootstrap), readiness, graceful shutdown flushing reporters, and the CLI entry point."""

import asyncio
import json
import os
import pathlib
import signal
import sys
from typing import Any

import aiohttp
import pytest
import yaml
from serverharness import ALWAYS, AUTH, TOKEN, collector, settings_for, upstream, wait_for

from gatetrace.gateway import config, server

pytestmark = pytest.mark.timeout(60)


async def test_bootstrap_config_serves_traced_requests_and_queries() -> None:
    async with upstream() as up:
        gw = server.Gateway(settings_for(up, tracing=ALWAYS), token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                ready = await http.get(gw.admin_url + "/readyz")
                assert ready.status == 200
                response = await http.get(gw.proxy_url + "/api/users/7")
                assert response.status == 200
                trace_id = response.headers["X-Trace-Id"]
                echoed = await response.json()
                assert echoed["headers"]["traceparent"].split("-")[1] == trace_id
                await wait_for(lambda: len(gw.store) >= 2)
                found = await http.get(f"{gw.admin_url}/api/traces/{trace_id}", headers=AUTH)
                assert found.status == 200
                trace = (await found.json())["data"][0]
                kinds = sorted(
                    t["value"] for s in trace["spans"] for t in s["tags"] if t["key"] == "span.kind"
                )
                assert kinds == ["client", "server"]
                services = await http.get(gw.admin_url + "/api/services", headers=AUTH)
                assert (await services.json())["data"] == ["edge"]
                got = await (
                    await http.get(gw.admin_url + "/admin/v1/tracing", headers=AUTH)
                ).json()
                assert got["revision"] == 0
                metrics = await (await http.get(gw.admin_url + "/metrics")).text()
                assert "gatetrace_config_revision 0" in metrics
                assert 'gatetrace_gateway_requests_total{route="users",code="200"} 1' in metrics
                assert 'gatetrace_config_applies_total{source="bootstrap",outcome="applied"} 1' in (
                    metrics
                )
        finally:
            await gw.stop(2.0)


async def test_without_config_proxy_serves_but_not_ready() -> None:
    async with upstream() as up:
        gw = server.Gateway(settings_for(up), token=TOKEN)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                assert (await http.get(gw.admin_url + "/readyz")).status == 503
                response = await http.get(gw.proxy_url + "/api/users/1")
                assert response.status == 200
                put = await http.put(
                    gw.admin_url + "/admin/v1/tracing",
                    json={"revision": 1, "config": ALWAYS},
                    headers=AUTH,
                )
                assert put.status == 200
                assert (await http.get(gw.admin_url + "/readyz")).status == 200
        finally:
            await gw.stop(2.0)


async def test_tracing_file_wins_over_bootstrap_and_is_watched(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tracing.json"
    path.write_text(json.dumps({"revision": 4, "version": "x", "config": ALWAYS}))
    async with upstream() as up:
        settings = settings_for(up, tracing={"tags": {"from": "bootstrap"}}, tracingFile=str(path))
        gw = server.Gateway(settings, token=TOKEN, file_poll_interval=0.02)
        await gw.start()
        try:
            assert gw.holder.current is not None
            assert gw.holder.current.revision == 4
            new = {**ALWAYS, "tags": {"from": "file"}}
            tmp = tmp_path / "next.json"
            tmp.write_text(json.dumps({"revision": 5, "config": new}))
            os.replace(tmp, path)
            await wait_for(
                lambda: gw.holder.current is not None and gw.holder.current.revision == 5
            )
            assert ("from", "file") in gw.holder.current.tracer.resource.tags
        finally:
            await gw.stop(2.0)


async def test_bad_tracing_file_falls_back_to_bootstrap(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tracing.json"
    path.write_text("{oops")
    async with upstream() as up:
        settings = settings_for(up, tracing=ALWAYS, tracingFile=str(path))
        gw = server.Gateway(settings, token=TOKEN)
        await gw.start()
        try:
            assert gw.holder.current is not None
            assert gw.holder.current.revision == 0
            assert gw.watcher is not None
            assert gw.watcher.loads.value(("parse",)) == 1
        finally:
            await gw.stop(2.0)


async def test_invalid_bootstrap_refuses_to_start() -> None:
    settings = settings_for(
        "http://127.0.0.1:9",
        tracing={"sampling": {"sampler": {"type": "probabilistic", "rate": 5}}},
    )
    gw = server.Gateway(settings, token=TOKEN)
    with pytest.raises(server.StartupError, match=r"tracing\.sampling\.sampler\.rate"):
        await gw.start()


async def test_port_in_use_is_a_startup_error() -> None:
    async with upstream() as up:
        port = int(up.rsplit(":", 1)[1])
        settings = settings_for(up).model_copy(update={"listen": f"127.0.0.1:{port}"})
        gw = server.Gateway(settings, token=TOKEN)
        with pytest.raises(server.StartupError, match="cannot listen"):
            await gw.start()


async def test_stop_finishes_in_flight_requests_and_flushes_reporters() -> None:
    arrived = asyncio.Event()
    async with upstream(delay=0.3, arrived=arrived) as up, collector() as (endpoint, received):
        cfg = {
            "sampling": {"sampler": {"type": "const", "decision": True}},
            "reporters": [{"type": "zipkin", "endpoint": endpoint, "gzip": False}],
            "batching": {"flushIntervalMs": 600000},  # only the shutdown flush sends
        }
        gw = server.Gateway(settings_for(up, tracing=cfg), token=TOKEN)
        await gw.start()
        async with aiohttp.ClientSession() as http:
            pending = asyncio.ensure_future(http.get(gw.proxy_url + "/api/users/slow"))
            await asyncio.wait_for(arrived.wait(), 10)  # in flight at the upstream
            await gw.stop(5.0)
            response = await pending
            assert response.status == 200
        names = sorted(s["name"] for s in received)
        assert len(names) == 2, received
        assert {s["kind"] for s in received} == {"SERVER", "CLIENT"}


@pytest.mark.parametrize(
    ("token_file", "fallback", "expected"),
    [("  file-token\n", None, "file-token"), (None, " env-token ", "env-token")],
)
def test_read_token(
    tmp_path: pathlib.Path, token_file: str | None, fallback: str | None, expected: str
) -> None:
    admin: dict[str, Any] = {}
    if token_file is not None:
        (tmp_path / "token").write_text(token_file)
        admin["tokenFile"] = str(tmp_path / "token")
    settings = config.parse_config({"admin": admin})
    assert server.read_token(settings, fallback) == expected


def test_read_token_problems(tmp_path: pathlib.Path) -> None:
    with pytest.raises(server.StartupError, match="GATETRACE_ADMIN_TOKEN"):
        server.read_token(config.parse_config({}), None)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(server.StartupError, match="empty"):
        server.read_token(config.parse_config({"admin": {"tokenFile": str(tmp_path / "empty")}}))
    with pytest.raises(server.StartupError, match="cannot read"):
        server.read_token(config.parse_config({"admin": {"tokenFile": str(tmp_path / "nope")}}))


@pytest.mark.parametrize(
    "process",
    [
        {},  # as many workers as CPUs, uvloop (installed with the test extra)
        {"workers": 1, "eventLoop": "uvloop"},  # one process on uvloop
        {"workers": 2, "eventLoop": "asyncio"},
    ],
    ids=["default", "one-process-uvloop", "two-workers-asyncio"],
)
async def test_cli_runs_until_sigterm(tmp_path: pathlib.Path, process: dict[str, Any]) -> None:
    async with upstream() as up:
        cfg_path = tmp_path / "gateway.yaml"
        cfg_path.write_text(
            yaml.safe_dump(
                {
                    "service": "cli-gw",
                    "listen": "127.0.0.1:0",
                    "admin": {"listen": "127.0.0.1:0"},
                    "metrics": {"listen": "127.0.0.1:0"},
                    "queryApi": {"listen": "127.0.0.1:0"},
                    "routes": [{"name": "u", "prefix": "/", "upstream": up}],
                    "tracing": ALWAYS,
                    **process,
                }
            )
        )
        env = {**os.environ, "GATETRACE_ADMIN_TOKEN": TOKEN}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gatetrace.cli",
            "gateway",
            "--config",
            str(cfg_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            lines: dict[str, str] = {}
            while len(lines) < 4:  # gateway, admin, metrics, query
                line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
                assert line, "the gateway exited before announcing its addresses"
                key, _, url = line.partition(": ")
                lines[key] = url
            async with aiohttp.ClientSession() as http:
                assert (await http.get(lines["gateway"] + "/x")).status == 200
                ready = await http.get(lines["admin"] + "/readyz")
                assert ready.status == 200
                unauthorized = await http.get(lines["admin"] + "/admin/v1/tracing")
                assert unauthorized.status == 401
                scraped = await http.get(lines["metrics"] + "/metrics")
                assert "gatetrace_build_info{" in await scraped.text()
                assert (await http.get(lines["query"] + "/api/services")).status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_cli_without_token_exits_2(tmp_path: pathlib.Path) -> None:
    cfg_path = tmp_path / "gateway.yaml"
    cfg_path.write_text("listen: 127.0.0.1:0\n")
    env = {k: v for k, v in os.environ.items() if k != "GATETRACE_ADMIN_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gatetrace.cli",
        "gateway",
        "--config",
        str(cfg_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"GATETRACE_ADMIN_TOKEN" in err
