"""Real gateway admin apps (the gateway package's own) on 127.0.0.1 for operator tests."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gatetrace.gateway import admin, config, state, store
from gatetrace.runtime import metrics
from tests import loopback

TOKEN = "operator-test-token"


@dataclass
class AdminGateway:
    url: str
    holder: state.TracingHolder
    runner: web.AppRunner

    async def running(self) -> tuple[int, str] | None:
        current = self.holder.current
        return None if current is None else (current.revision, current.version)


async def start_gateway(service: str = "api-gateway", port: int = 0) -> AdminGateway:
    settings = config.GatewayConfig(service=service)
    holder = state.TracingHolder()
    app = admin.make_admin_app(
        settings, holder, store.SpanStore(max_spans=1000), metrics.Registry(), TOKEN
    )
    runner, url = await loopback.start(app, port=port, shutdown_timeout=0.5, access_log=None)
    return AdminGateway(url, holder, runner)


@contextlib.asynccontextmanager
async def gateways(count: int) -> AsyncIterator[list[AdminGateway]]:
    started = [await start_gateway() for _ in range(count)]
    try:
        yield started
    finally:
        for gateway in started:
            await gateway.runner.cleanup()


async def put_by_hand(url: str, revision: int, config: dict[str, object]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            url + "/admin/v1/tracing",
            json={"revision": revision, "config": config},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        return response.status
