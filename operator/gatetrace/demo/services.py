"""The demo's traced services: frontend -> users, orders -> payments, plus a
W3C Trace Context test-harness endpoint.

``payments`` fails a configurable share of its requests (HTTP 503) and has a
slow path, so the demo shows error/latency priority at work. Every service
is an aiohttp app built by :func:`make_service_app`, traced by the embedding kit
(:mod:`gatetrace.embed`): its middleware, its client tracing on the app's session, and
(started by the demo) its admin port, which the demo's reconciler pushes the policy to.
"""

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from gatetrace import embed, runtime

__all__ = ["SERVICES", "DemoSettings", "make_service_app"]

SERVICES = ("frontend", "users", "orders", "payments", "harness")


@dataclass(frozen=True, slots=True)
class DemoSettings:
    error_rate: float = 0.1
    """Share of payment requests that fail with 503."""
    slow_ms: int = 1200
    """How long ``/payments/slow`` takes."""
    seed: int | None = None
    """Seed of the failure draws (None: random)."""
    urls: Mapping[str, str] = field(default_factory=dict)
    """Base URL of each service, filled in once they listen."""


_SESSION = web.AppKey("session", aiohttp.ClientSession)


def _url(settings: DemoSettings, service: str, path: str) -> str:
    return settings.urls[service].rstrip("/") + path


async def _fetch(
    session: aiohttp.ClientSession, method: str, url: str, *, json: Any = None
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one call; a failed connection is status 0."""
    try:
        async with session.request(
            method, url, json=json, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, str(exc)


def make_service_app(service: str, settings: DemoSettings, kit: embed.Kit) -> web.Application:
    """The aiohttp app of one demo service, traced by ``kit``."""
    app = web.Application(middlewares=[embed.aiohttp_middleware(kit)])
    rng = random.Random(settings.seed)

    async def session_ctx(app: web.Application) -> Any:
        app[_SESSION] = aiohttp.ClientSession(trace_configs=[embed.aiohttp_trace_config(kit)])
        yield
        await app[_SESSION].close()

    app.cleanup_ctx.append(session_ctx)

    async def call(request: web.Request, method: str, target: str, path: str, **kw: Any) -> Any:
        return await _fetch(request.app[_SESSION], method, _url(settings, target, path), **kw)

    if service == "frontend":

        async def checkout(request: web.Request) -> web.Response:
            user_id = request.query.get("user", "42")
            status, user = await call(request, "GET", "users", f"/users/{user_id}")
            if status != 200:
                return web.json_response({"error": "user lookup failed"}, status=502)
            slow = request.query.get("slow") == "1"
            status, order = await call(
                request, "POST", "orders", "/orders", json={"user": user_id, "slow": slow}
            )
            code = 200 if status == 200 else 502
            return web.json_response({"user": user, "order": order}, status=code)

        app.router.add_get("/api/checkout", checkout)
        app.router.add_get("/api/catalog", _catalog)

    elif service == "users":

        async def user(request: web.Request) -> web.Response:
            span = runtime.current_span()
            if span is not None:
                span.set_tag("user.id", request.match_info["id"])
            await asyncio.sleep(0.002)
            return web.json_response({"id": request.match_info["id"], "name": "Ada"})

        app.router.add_get("/users/{id}", user)
        app.router.add_get("/api/users/{id}", user)  # reached through the gateway

    elif service == "orders":

        async def order(request: web.Request) -> web.Response:
            body = await request.json()
            await asyncio.sleep(0.003)
            path = "/payments/slow" if body.get("slow") else "/payments"
            status, payment = await call(request, "POST", "payments", path, json={"amount": 12})
            if status != 200:
                return web.json_response({"error": "payment failed", "status": status}, status=502)
            return web.json_response({"order": "o-1", "payment": payment})

        app.router.add_post("/orders", order)
        app.router.add_post("/api/orders", order)  # reached through the gateway

    elif service == "payments":

        async def pay(request: web.Request) -> web.Response:
            await request.read()
            await asyncio.sleep(0.004)
            if rng.random() < settings.error_rate:
                span = runtime.current_span()
                if span is not None:
                    span.log(
                        {
                            "event": "exception",
                            "exception.type": "PaymentDeclined",
                            "exception.message": "card processor unavailable",
                        }
                    )
                return web.json_response({"error": "card processor unavailable"}, status=503)
            return web.json_response({"payment": "p-1", "status": "captured"})

        async def pay_slow(request: web.Request) -> web.Response:
            await request.read()
            await asyncio.sleep(settings.slow_ms / 1000)
            return web.json_response({"payment": "p-2", "status": "captured", "slow": True})

        app.router.add_post("/payments", pay)
        app.router.add_post("/payments/slow", pay_slow)

    elif service == "harness":

        async def test(request: web.Request) -> web.Response:
            """W3C Trace Context test-harness protocol: for each {url, arguments},
            POST ``arguments`` as JSON to ``url`` with our context, then answer."""
            try:
                cases = await request.json()
            except ValueError:
                return web.json_response({"error": "body is not JSON"}, status=400)
            if not isinstance(cases, list):
                return web.json_response({"error": "body must be a JSON list"}, status=400)
            for case in cases:
                if not isinstance(case, dict) or not isinstance(case.get("url"), str):
                    return web.json_response({"error": "each item needs a url"}, status=400)
                await _fetch(
                    request.app[_SESSION], "POST", case["url"], json=case.get("arguments", [])
                )
            return web.json_response({})

        app.router.add_post("/test", test)
    else:
        raise ValueError(f"unknown demo service {service!r}; expected one of {SERVICES}")
    return app


async def _catalog(request: web.Request) -> web.Response:
    return web.json_response({"items": ["tea", "coffee"]})
