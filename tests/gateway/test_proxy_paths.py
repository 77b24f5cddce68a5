"""Dot-segments (RFC 3986 §5.2.4) are removed before routing and forwarding: through a
running gateway on 127.0.0.1 with raw request targets (no client library to normalise
them) and an upstream that records the raw path it was asked for."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from serverharness import TOKEN

from gatetrace.gateway import config, paths, server

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # RFC 3986 §5.2.4 examples and §5.4 reference resolution, on absolute paths
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a/b/./c", "/a/b/c"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/a/b/../../", "/"),
        ("/a/.../b", "/a/.../b"),  # three dots: an ordinary segment
        ("/a/..b/c", "/a/..b/c"),
        ("/a//../b", "/a/b"),  # an empty segment is a segment
        # percent-encoded dots are dots
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E%2e/b", "/b"),
        ("/a/.%2E/b", "/b"),
        ("/a/%2e/b", "/a/b"),
        # nothing else is decoded: %2f stays opaque
        ("/a/..%2f..%2fb", "/a/..%2f..%2fb"),
        ("/a%2f..", "/a%2f.."),
        ("/plain/path", "/plain/path"),
        ("/", "/"),
        # climbing above the root
        ("/..", None),
        ("/a/../..", None),
        ("/a/%2e%2e/%2E%2E/x", None),
    ],
)
def test_remove_dot_segments(raw: str, expected: str | None) -> None:
    assert paths.remove_dot_segments(raw) == expected


@contextlib.asynccontextmanager
async def _upstream(seen: list[str]) -> AsyncIterator[str]:
    async def record(request: web.Request) -> web.Response:
        seen.append(request.rel_url.raw_path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _raw_get(host: str, port: int, target: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


CASES = [
    # (request target, status, raw path the upstream saw)
    ("/strip/../../escape", 400, None),
    ("/strip/%2e%2e/%2e%2e/escape", 400, None),
    ("/echo/../strip/x", 200, "/base/x"),  # routed by the normalised path
    ("/strip/a/%2e%2e/b", 200, "/base/b"),
    ("/strip/a/.%2E/b", 200, "/base/b"),
    ("/strip/..", 404, None),  # "/" after normalising: no route for it
    ("/strip/a%2f..%2fb", 200, "/base/a%2f..%2fb"),
    ("/echo/./x", 200, "/echo/x"),
    ("/echo/x/../y?q=1", 200, "/echo/y"),
]


async def test_dot_segments_through_the_gateway() -> None:
    seen: list[str] = []
    async with _upstream(seen) as up:
        doc = {
            "listen": "127.0.0.1:0",
            "admin": {"listen": "127.0.0.1:0"},
            "routes": [
                {
                    "name": "strip",
                    "prefix": "/strip",
                    "upstream": up + "/base",
                    "stripPrefix": True,
                },
                {"name": "echo", "prefix": "/echo", "upstream": up},
            ],
        }
        gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.2)
        await gw.start()
        assert gw.proxy_address is not None
        try:
            for target, status, upstream_path in CASES:
                seen.clear()
                answer = await _raw_get(*gw.proxy_address, target)
                assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (target, answer[:200])
                assert seen == ([upstream_path] if upstream_path else []), target
                if status == 400:
                    assert b"climbs above the root" in answer
        finally:
            await gw.stop(2.0)
