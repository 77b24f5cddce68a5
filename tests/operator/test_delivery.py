"""Pushing configs: outcomes for each kind of answer, retries, timeouts, supersession.

The gateways here are small aiohttp servers on 127.0.0.1 that answer with the
status codes of the admin API's fault cases (the real gateway is exercised in
test_reconcile_gateways.py).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from gatetrace.operator import delivery
from tests import loopback

TOKEN = "s3cret"


class Gateway:
    """Scripted admin endpoint: answers come from ``script`` in order, the last repeats."""

    def __init__(self, script: list[Callable[[web.Request], Any]]) -> None:
        self.script = script
        self.puts: list[dict[str, Any]] = []
        self.running = 0

    async def put(self, request: web.Request) -> web.StreamResponse:
        self.puts.append(await request.json())
        step = self.script[min(len(self.puts) - 1, len(self.script) - 1)]
        result = step(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response({"revision": self.running, "version": "v"})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Gateway], Any]]:
    runners: list[web.AppRunner] = []

    async def start(gateway: Gateway) -> str:
        app = web.Application()
        app.router.add_put("/admin/v1/tracing", gateway.put)
        app.router.add_get("/admin/v1/tracing", gateway.get)
        runner, url = await loopback.start(app, shutdown_timeout=0.5)
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()


def _pusher(**retry: Any) -> delivery.Pusher:
    policy = delivery.RetryPolicy(**{"attempts": 3, "timeout": 2.0, "backoff": 0.01, **retry})
    return delivery.Pusher(delivery.AdminClient(lambda: TOKEN), retry=policy)


def _request(url: str, revision: int = 1) -> delivery.PushRequest:
    return delivery.PushRequest("ns/gw", url, revision, "v1", {"sampling": {}})


def ok(request: web.Request) -> web.Response:
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    return web.json_response({"revision": 1, "version": "v1"})


async def test_applied_sends_revision_and_config(serve: Any) -> None:
    gateway = Gateway([ok])
    url = await serve(gateway)
    pusher = _pusher()
    result = await pusher.push(_request(url, 4))
    await pusher.client.close()
    assert result.applied and result.running_revision == 4 and result.attempts == 1
    assert gateway.puts == [{"revision": 4, "config": {"sampling": {}}}]


@pytest.mark.parametrize(
    ("status", "body", "outcome", "needle"),
    [
        (401, {"error": "unauthorized"}, delivery.PushOutcome.UNAUTHORIZED, "token refused"),
        (
            422,
            {"errors": [{"loc": "sampling.sampler.rate", "msg": "must be <= 1"}]},
            delivery.PushOutcome.REJECTED,
            "sampling.sampler.rate: must be <= 1",
        ),
        (400, {"error": "body is not JSON"}, delivery.PushOutcome.REJECTED, "not JSON"),
    ],
)
async def test_terminal_answers_are_not_retried(
    serve: Any, status: int, body: dict[str, Any], outcome: delivery.PushOutcome, needle: str
) -> None:
    gateway = Gateway([lambda _r: web.json_response(body, status=status)])
    url = await serve(gateway)
    pusher = _pusher()
    result = await pusher.push(_request(url))
    await pusher.client.close()
    assert result.outcome is outcome
    assert needle in result.message
    assert len(gateway.puts) == 1


async def test_stale_reports_the_running_revision(serve: Any) -> None:
    gateway = Gateway([lambda _r: web.json_response({"error": "stale"}, status=409)])
    gateway.running = 7
    url = await serve(gateway)
    pusher = _pusher()
    result = await pusher.push(_request(url, 3))
    await pusher.client.close()
    assert result.outcome is delivery.PushOutcome.STALE
    assert result.running_revision == 7
    assert "revision 7" in result.message


async def test_server_errors_are_retried_until_success(serve: Any) -> None:
    fail = lambda _r: web.json_response({"error": "boom"}, status=503)  # noqa: E731
    gateway = Gateway([fail, fail, ok])
    url = await serve(gateway)
    pusher = _pusher()
    result = await pusher.push(_request(url))
    await pusher.client.close()
    assert result.applied and result.attempts == 3


async def test_gives_up_after_the_attempts(serve: Any) -> None:
    gateway = Gateway([lambda _r: web.json_response({"error": "boom"}, status=500)])
    url = await serve(gateway)
    pusher = _pusher(attempts=2)
    result = await pusher.push(_request(url))
    await pusher.client.close()
    assert result.outcome is delivery.PushOutcome.SERVER_ERROR
    assert result.attempts == 2 and len(gateway.puts) == 2


async def test_hanging_gateway_times_out(serve: Any) -> None:
    async def hang(_r: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    url = await serve(Gateway([hang]))
    pusher = _pusher(attempts=1, timeout=0.3)
    result = await pusher.push(_request(url))
    await pusher.client.close()
    assert result.outcome is delivery.PushOutcome.TIMEOUT
    assert result.seconds < 5


async def test_unreachable_gateway() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pusher = _pusher(attempts=2)
    result = await pusher.push(_request(f"http://127.0.0.1:{port}"))
    await pusher.client.close()
    assert result.outcome is delivery.PushOutcome.UNREACHABLE


async def test_a_newer_revision_supersedes_a_retrying_older_one(serve: Any) -> None:
    gateway = Gateway([lambda _r: web.json_response({"error": "boom"}, status=503)])
    url = await serve(gateway)
    release = asyncio.Event()

    async def backoff(_seconds: float) -> None:
        await release.wait()

    pusher = delivery.Pusher(
        delivery.AdminClient(lambda: TOKEN),
        retry=delivery.RetryPolicy(attempts=5, timeout=2.0),
        sleep=backoff,
    )
    older = asyncio.create_task(pusher.push(_request(url, 1)))
    for _ in range(500):  # until the first attempt failed; its retry waits for us
        if gateway.puts:
            break
        await asyncio.sleep(0.01)
    gateway.script = [ok]
    newer = await pusher.push(_request(url, 2))
    release.set()
    first = await older
    await pusher.client.close()
    assert newer.applied
    assert first.outcome is delivery.PushOutcome.SUPERSEDED
    assert [p["revision"] for p in gateway.puts] == [1, 2]


async def test_push_all_runs_concurrently(serve: Any) -> None:
    async def slow(_r: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({})

    urls = [await serve(Gateway([slow])) for _ in range(5)]
    pusher = _pusher()
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await pusher.push_all(
        [delivery.PushRequest(f"ns/gw{i}", u, 1, "v", {}) for i, u in enumerate(urls)]
    )
    elapsed = loop.time() - started
    await pusher.client.close()
    assert all(r.applied for r in results)
    assert elapsed < 1.2  # five 0.3 s pushes, not one after the other
