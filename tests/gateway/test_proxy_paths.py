"""Dot-segments (RFC 3986 §5.2.4) are removed before routing and forwarding: through a
running gateway on 127.0.0.1 with raw request targets (no client library to normalise
them) and an upstream that records the raw path it was asked for."""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from serverharness import TOKEN
from tests import loopback

from gatetrace.gateway import config, paths, routes, server

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


@pytest.mark.parametrize(
    ("raw", "path", "floor"),
    [
        ("/a/b", "/a/b", paths.NO_CLIMB),
        ("/a/./b", "/a/b", paths.NO_CLIMB),
        ("/a/b/../c", "/a/c", 1),
        ("/a/b/c/../../d", "/a/d", 1),
        ("/a/../b", "/b", 0),
        ("/a\\b;c", "/a\\b;c", paths.NO_CLIMB),
    ],
)
def test_normalize_reports_how_far_dot_segments_climbed(raw: str, path: str, floor: int) -> None:
    assert paths.normalize(raw) == paths.Normalized(path, floor)


@pytest.mark.parametrize(
    "raw",
    ["/a/..\\b", "/a/b\\..", "/a/..;/b", "/a/.%2E;jsessionid=1/b", "/a/x\\%2e%2e;p\\y"],
)
def test_segments_some_servers_read_as_dot_dot_are_refused(raw: str) -> None:
    with pytest.raises(paths.PathRefusedError, match=r"read as '\.\.' by some servers"):
        paths.normalize(raw)
    assert paths.remove_dot_segments(raw) == raw  # RFC 3986 alone keeps them


def _lenient_segments(path: str) -> list[str]:
    """``path``'s segments as the most lenient upstream reads them: ``\\`` and ``/`` both
    separators, ``;params`` dropped, ``%2e`` decoded."""
    pieces = path.replace("\\", "/").split("/")
    return [p.split(";", 1)[0].replace("%2e", ".").replace("%2E", ".") for p in pieces]


def test_nothing_forwarded_climbs_out_of_the_upstream_base_path() -> None:
    table = routes.RouteTable.from_config(
        config.parse_config(
            {
                "routes": [
                    {
                        "name": "strip",
                        "prefix": "/strip",
                        "upstream": "http://u:80/base",
                        "stripPrefix": True,
                    },
                    {"name": "deep", "prefix": "/api/v1", "upstream": "http://u:80/svc"},
                ]
            }
        ).routes
    )
    parts = ["a", ".", "..", "%2e", "%2E%2e", ".%2e", "..;p", "a\\..", "%2f..", "", "strip"]
    forwarded = 0
    for start in ("/strip", "/api/v1", "/api", ""):
        for combo in itertools.product(parts, repeat=3):
            raw = start + "/" + "/".join(combo)
            try:
                path, route = table.resolve(raw)
            except paths.PathRefusedError:
                continue
            if route is None:
                continue
            url = route.upstream_url(path, "")
            upstream_path = url.split("://", 1)[1].partition("/")[2]
            base = "svc/api/v1" if route.name == "deep" else "base"
            assert upstream_path == base or upstream_path.startswith(base + "/"), (raw, url)
            assert ".." not in _lenient_segments(upstream_path), (raw, url)
            forwarded += 1
    assert forwarded > 100  # the property was tried on real forwards, not only refusals


@contextlib.asynccontextmanager
async def _upstream(seen: list[str]) -> AsyncIterator[str]:
    async def record(request: web.Request) -> web.Response:
        seen.append(request.rel_url.raw_path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    async with loopback.serving(app) as url:
        yield url


async def _raw_get(host: str, port: int, target: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


CLIMBS_ROOT = b"climbs above the root"
CLIMBS_ECHO = b"climbs above the prefix '/echo' of route 'echo'"
CLIMBS_STRIP = b"climbs above the prefix '/strip' of route 'strip'"
CLIMBS_DEEP = b"climbs above the prefix '/api/v1' of route 'deep'"
AMBIGUOUS = b"not a dot-segment in RFC 3986 but read as '..' by some servers"

CASES: list[tuple[str, int, str | None, bytes]] = [
    # (request target, status, raw path the upstream saw, what the 400 says)
    ("/strip/../../escape", 400, None, CLIMBS_ROOT),
    ("/strip/%2e%2e/%2e%2e/escape", 400, None, CLIMBS_ROOT),
    ("/strip/%2E%2E/%2e%2E/escape", 400, None, CLIMBS_ROOT),
    ("http://x/strip/../../escape", 400, None, CLIMBS_ROOT),  # absolute-form target
    # a '..' may not leave the prefix of the route the path was sent to...
    ("/echo/../strip/x", 400, None, CLIMBS_ECHO),
    ("/echo/..", 400, None, CLIMBS_ECHO),
    ("/echo/.%2e", 400, None, CLIMBS_ECHO),
    ("/strip/..", 400, None, CLIMBS_STRIP),
    ("/strip/a/../..", 400, None, CLIMBS_STRIP),
    ("/strip/./..", 400, None, CLIMBS_STRIP),
    ("/api/v1/../v2/x", 400, None, CLIMBS_DEEP),
    # ...nor enter a route's prefix from outside it
    ("/elsewhere/../strip/x", 400, None, CLIMBS_STRIP),
    ("/api/v1/x/../../v1/y", 400, None, CLIMBS_DEEP),
    # inside the route: removed, then forwarded under the upstream's base path
    ("/strip/a/%2e%2e/b", 200, "/base/b", b""),
    ("/strip/a/.%2E/b", 200, "/base/b", b""),
    ("/strip/a/..", 200, "/base/", b""),
    ("/strip/a%2f..%2fb", 200, "/base/a%2f..%2fb", b""),  # %2f stays opaque
    ("/strip/%252e%252e/x", 200, "/base/%252e%252e/x", b""),  # %25 is not a dot
    ("/echo/./x", 200, "/echo/x", b""),
    ("/echo/x/../y?q=1", 200, "/echo/y", b""),
    ("/echo/x?a=/../..", 200, "/echo/x", b""),  # the query is not the path
    ("/api/v1/a/../b", 200, "/svc/v1/api/v1/b", b""),
    # backslashes and ';' are not separators in RFC 3986, but some upstreams read
    # '..\' and '..;' as '..': refused rather than forwarded to climb there
    ("/strip/..\\..\\escape", 400, None, AMBIGUOUS),
    ("/strip/a\\%2e%2e", 400, None, AMBIGUOUS),
    ("/strip/..;/..;/escape", 400, None, AMBIGUOUS),
    ("/strip/%2e%2e;x=1/escape", 400, None, AMBIGUOUS),
    ("/strip/a\\b;c=1", 200, "/base/a\\b;c=1", b""),  # no dot-segment: as it came
    ("/strip/...;x", 200, "/base/...;x", b""),
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
                {"name": "deep", "prefix": "/api/v1", "upstream": up + "/svc/v1"},
            ],
        }
        gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.2)
        await gw.start()
        assert gw.proxy_address is not None
        try:
            for target, status, upstream_path, says in CASES:
                seen.clear()
                answer = await _raw_get(*gw.proxy_address, target)
                assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (target, answer[:200])
                assert seen == ([upstream_path] if upstream_path else []), target
                assert says in answer, (target, answer)
        finally:
            await gw.stop(2.0)
