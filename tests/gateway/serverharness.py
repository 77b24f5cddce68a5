"""Shared pieces of the gateway server tests: an echoing upstream, a Zipkin-like collector,
gateway settings on ephemeral 127.0.0.1 ports."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from tests import loopback

from gatetrace.gateway import config, server

TOKEN = "server-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def upstream(delay: float = 0.0, arrived: asyncio.Event | None = None) -> AsyncIterator[str]:
    """An upstream echoing the headers it got (after ``delay`` seconds); sets ``arrived``
    when a request reaches it."""

    async def echo(request: web.Request) -> web.Response:
        if arrived is not None:
            arrived.set()
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"path": request.path, "headers": dict(request.headers)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    async with loopback.serving(app) as url:
        yield url


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[str, list[Any]]]:
    """A Zipkin-like collector keeping the spans POSTed to it."""
    received: list[Any] = []

    async def spans(request: web.Request) -> web.Response:
        received.extend(json.loads(await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/api/v2/spans", spans)
    async with loopback.serving(app) as url:
        yield f"{url}/api/v2/spans", received


@contextlib.asynccontextmanager
async def running(
    settings: config.GatewayConfig,
    *,
    headers: dict[str, str] | None = None,
    drain_seconds: float = 0.5,
) -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    """A started gateway and a client session (sending ``headers``); stopped at the end."""
    gw = server.Gateway(settings, token=TOKEN, drain_seconds=drain_seconds)
    await gw.start()
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            yield gw, http
    finally:
        await gw.stop(2.0)


def settings_for(up: str, **extra: Any) -> config.GatewayConfig:
    doc: dict[str, Any] = {
        "service": "edge",
        "listen": "127.0.0.1:0",
        "admin": {"listen": "127.0.0.1:0"},
        "routes": [{"name": "users", "prefix": "/api/users", "upstream": up}],
        **extra,
    }
    return config.parse_config(doc)


ALWAYS = {
    "sampling": {"sampler": {"type": "const", "decision": True}},
    "batching": {"flushIntervalMs": 20},
}


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")
