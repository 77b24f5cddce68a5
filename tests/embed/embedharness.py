"""The retro path on 127.0.0.1: client -> gateway -> aiohttp service (kit) -> ASGI service
(kit, FastAPI under a real uvicorn, httpx client) -> leaf (plain aiohttp, fails on
``?fail=1``). Every kit-managed service exports into the gateway's span store (a ``memory``
reporter), so the gateway's query API reads the whole trace."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import fastapi
import httpx
import uvicorn
from aiohttp import web
from tests import loopback

from gatetrace import embed
from gatetrace.gateway import config, server

KEPT_CHAIN = [
    ("edge", "server"),
    ("edge", "client"),
    ("svc-a", "server"),
    ("svc-a", "client"),
    ("svc-b", "server"),
    ("svc-b", "client"),
]
"""(service, span.kind) of a kept trace's spans by start time: every hop of the chain."""
TOKEN = "embed-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

SERVICE_CONFIG: dict[str, Any] = {
    "sampling": {"sampler": {"type": "const", "decision": False}},
    "reporters": [{"type": "memory"}],
    "batching": {"flushIntervalMs": 20},
}


def gateway_tracing(prioritize: dict[str, Any] | None = None, **retro: Any) -> dict[str, Any]:
    """Nothing sampled, errors kept (priority), retro collection with ``retro`` settings."""
    return {
        "sampling": {
            "sampler": {"type": "const", "decision": False},
            "prioritize": prioritize or {"errors": True, "maxPerSecond": 1000},
        },
        "reporters": [{"type": "memory"}],
        "batching": {"flushIntervalMs": 20},
        "retro": retro,
    }


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any) -> AsyncIterator[str]:
    """``app`` under a real uvicorn on an ephemeral 127.0.0.1 port."""
    settings = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="warning"
    )
    served = uvicorn.Server(settings)
    task = asyncio.create_task(served.serve())
    for _ in range(500):
        if served.started:
            break
        await asyncio.sleep(0.01)
    assert served.started, "uvicorn did not start"
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task


@contextlib.asynccontextmanager
async def kit_for(service: str, sink: Any, tracing: dict[str, Any]) -> AsyncIterator[embed.Kit]:
    kit = embed.Kit(service, token=TOKEN, sink=sink)
    await kit.apply(tracing)
    admin = embed.AdminServer(kit, "127.0.0.1", 0)
    await admin.start()
    try:
        yield kit
    finally:
        await admin.stop()
        await kit.close()


def leaf_app(seen: list[dict[str, str]]) -> web.Application:
    async def leaf(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(status=503 if request.query.get("fail") else 200, text="leaf")

    app = web.Application()
    app.router.add_get("/leaf", leaf)
    return app


def asgi_app(kit: embed.Kit, leaf: str) -> Any:
    api = fastapi.FastAPI()

    @api.get("/b/{item}")
    async def b(item: str, fail: str = "") -> fastapi.Response:
        transport = embed.HttpxTransport(kit)
        async with httpx.AsyncClient(transport=transport) as client:
            answer = await client.get(f"{leaf}/leaf", params={"fail": fail} if fail else None)
        code = 502 if answer.status_code >= 500 else 200
        return fastapi.responses.JSONResponse({"item": item}, status_code=code)

    return embed.AsgiMiddleware(api, kit)


def aiohttp_app(kit: embed.Kit, downstream: str, seen: list[dict[str, str]]) -> web.Application:
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def a(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        fail = request.query.get("fail", "")
        async with request.app[session_key].get(
            f"{downstream}/b/1", params={"fail": fail} if fail else None
        ) as answer:
            await answer.read()
            code = 502 if answer.status >= 500 else 200
        return web.json_response({"b": answer.status}, status=code)

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[session_key] = aiohttp.ClientSession(trace_configs=[embed.aiohttp_trace_config(kit)])
        yield
        await app[session_key].close()

    app = web.Application(middlewares=[embed.aiohttp_middleware(kit)])
    app.cleanup_ctx.append(session)
    app.router.add_get("/api/a", a)
    return app


@dataclass
class Path:
    """The running chain."""

    gateway: server.Gateway
    http: aiohttp.ClientSession
    a: embed.Kit
    b: embed.Kit
    a_seen: list[dict[str, str]] = field(default_factory=list)
    leaf_seen: list[dict[str, str]] = field(default_factory=list)

    async def trace(self, trace_id: str) -> list[dict[str, Any]]:
        url = f"{self.gateway.admin_url}/api/traces/{trace_id}"
        async with self.http.get(url, headers=AUTH) as response:
            if response.status == 404:
                return []
            body = await response.json()
        spans: list[dict[str, Any]] = body["data"][0]["spans"]
        processes = body["data"][0]["processes"]
        for span in spans:
            span["service"] = processes[span["processID"]]["serviceName"]
        return spans


class LateSink:
    """A span sink forwarding to the gateway's store once the gateway exists (the
    services start first: the gateway's route needs their address)."""

    def __init__(self) -> None:
        self.target: Any = None

    def add(self, spans: Any) -> Any:
        return self.target.add(spans)


@contextlib.asynccontextmanager
async def path(
    *,
    prioritize: dict[str, Any] | None = None,
    b_config: dict[str, Any] | None = None,
    reporters: list[dict[str, Any]] | None = None,
    **retro: Any,
) -> AsyncIterator[Path]:
    """The chain; ``reporters`` are added to every hop's ``memory`` one (the e2e suite
    sends to the real Jaeger)."""
    a_seen: list[dict[str, str]] = []
    leaf_seen: list[dict[str, str]] = []
    sink = LateSink()
    async with contextlib.AsyncExitStack() as stack:
        leaf = await stack.enter_async_context(loopback.serving(leaf_app(leaf_seen)))
        extra = list(reporters or [])
        service_config = {**SERVICE_CONFIG, "reporters": [*SERVICE_CONFIG["reporters"], *extra]}
        b = await stack.enter_async_context(kit_for("svc-b", sink, b_config or service_config))
        b_url = await stack.enter_async_context(uvicorn_server(asgi_app(b, leaf)))
        a = await stack.enter_async_context(kit_for("svc-a", sink, service_config))
        a_url = await stack.enter_async_context(loopback.serving(aiohttp_app(a, b_url, a_seen)))
        tracing = gateway_tracing(prioritize, **retro)
        tracing["reporters"] = [*tracing["reporters"], *extra]
        settings = config.parse_config(
            {
                "service": "edge",
                "listen": "127.0.0.1:0",
                "admin": {"listen": "127.0.0.1:0"},
                "routes": [{"name": "a", "prefix": "/api/a", "upstream": a_url}],
                "tracing": tracing,
            }
        )
        gw = server.Gateway(settings, token=TOKEN, drain_seconds=0.2)
        sink.target = gw.store
        await gw.start()
        stack.push_async_callback(gw.stop, 2.0)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Path(gw, http, a, b, a_seen, leaf_seen)
