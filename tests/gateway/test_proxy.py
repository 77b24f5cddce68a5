"""The reverse proxy on real sockets: routing, streaming, headers, failures (tracing off)."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import proxyharness as h
import pytest
import pytest_asyncio

from gatetrace.gateway import proxy_app
from gatetrace.runtime import metrics


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[h.Stack]:
    async with h.start_stack(None, h.RecordingProcessor()) as s:
        yield s


async def test_longest_prefix_route_reaches_the_upstream_with_path_and_query(
    stack: h.Stack,
) -> None:
    resp, body = await stack.get("/api/users/7?x=1&y=%20z")
    assert resp.status == 200
    data = stack.users_json(body)
    assert data["path_qs"] == "/api/users/7?x=1&y=%20z"
    assert stack.users.received[-1].method == "GET"


async def test_strip_prefix_rebases_the_path_on_the_upstream_base(stack: h.Stack) -> None:
    resp, body = await stack.get("/strip/me/items/3?q=1")
    assert resp.status == 200
    assert stack.users_json(body)["path_qs"] == "/base/items/3?q=1"
    resp, body = await stack.get("/strip/me")
    assert stack.users_json(body)["path_qs"] == "/base/"


@pytest.mark.parametrize("path", ["/", "/api", "/api/usersx", "/nothing/here"])
async def test_no_route_is_404(stack: h.Stack, path: str) -> None:
    resp, body = await stack.get(path)
    assert resp.status == 404
    assert b"no route" in body
    assert stack.users.received == []


async def test_request_body_is_streamed_to_the_upstream(stack: h.Stack) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"a" * 16384
            await asyncio.sleep(0)

    async with stack.client.post("/api/users/upload", data=body()) as resp:
        data = await resp.json()
    assert data["body_len"] == 64 * 16384
    seen = stack.users.received[-1]
    assert seen.method == "POST"
    assert seen.header("Transfer-Encoding") == "chunked"


async def test_content_length_of_the_request_is_kept(stack: h.Stack) -> None:
    async with stack.client.put("/api/users/1", data=b"x" * 1000) as resp:
        assert (await resp.json())["body_len"] == 1000
    assert stack.users.received[-1].header("Content-Length") == "1000"


async def test_response_streams_first_chunk_before_the_upstream_sends_the_last(
    stack: h.Stack,
) -> None:
    async with stack.client.get("/api/users/stream?chunks=3") as resp:
        assert resp.status == 200
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        first = await asyncio.wait_for(resp.content.readexactly(6000), 5)
        assert first.startswith(b"chunk0;")
        assert not stack.users.gate.is_set()  # the upstream is still holding its last chunk
        stack.users.gate.set()
        rest = await asyncio.wait_for(resp.read(), 5)
    assert rest.endswith(b"chunk2;")
    assert len(first) + len(rest) == 3 * 7000


async def test_redirects_pass_through_unfollowed(stack: h.Stack) -> None:
    resp, _ = await stack.get("/api/users/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"
    assert resp.headers["Set-Cookie"] == "s=1"
    assert len(stack.users.received) == 1


async def test_hop_by_hop_headers_are_dropped_both_ways(stack: h.Stack) -> None:
    resp, _ = await stack.get(
        "/api/users/hop",
        headers={
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "1",
            "Keep-Alive": "timeout=3",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Authorization": "Basic eA==",
            "Proxy-Connection": "keep-alive",
            "X-End-To-End": "kept",
        },
    )
    seen = stack.users.received[-1]
    names = {k.lower() for k, _ in seen.headers}
    for dropped in ("x-client-hop", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert dropped not in names
    assert "proxy-connection" not in names
    assert seen.header("X-End-To-End") == "kept"
    assert seen.header("Connection") in (None, "keep-alive")
    for dropped in ("X-Private-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer"):
        assert dropped not in resp.headers
    assert resp.headers["X-Kept"] == "yes"


async def test_forwarding_headers_are_appended_and_set(stack: h.Stack) -> None:
    await stack.get("/api/users/1", headers={"X-Forwarded-For": "203.0.113.9"})
    seen = stack.users.received[-1]
    assert seen.all("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert seen.header("X-Forwarded-Proto") == "http"
    assert (
        seen.header(
            "X-Forwarded-Host",
        )
        is not None
    )
    host = seen.header("Host")
    assert host is not None
    assert host == stack.upstream_url.removeprefix("http://")


async def test_untrusted_forwarded_proto_is_replaced(stack: h.Stack) -> None:
    await stack.get("/api/users/1", headers={"X-Forwarded-Proto": "https"})
    assert stack.users.received[-1].header("X-Forwarded-Proto") == "http"


async def test_no_default_client_headers_are_added(stack: h.Stack) -> None:
    await stack.get("/api/users/1", skip_auto_headers=["User-Agent", "Accept", "Accept-Encoding"])
    names = {k.lower() for k, _ in stack.users.received[-1].headers}
    assert "user-agent" not in names
    assert "accept-encoding" not in names


async def test_upstream_status_codes_pass_through(stack: h.Stack) -> None:
    for code in (201, 404, 500, 503):
        resp, _ = await stack.get(f"/api/users/status?code={code}")
        assert resp.status == code


async def test_unreachable_upstream_is_502(stack: h.Stack) -> None:
    resp, body = await stack.get("/down/x")
    assert resp.status == 502
    assert b"upstream unavailable" in body


async def test_silent_upstream_is_504(stack: h.Stack) -> None:
    resp, body = await stack.get("/api/billing/slow?ms=2000")
    assert resp.status == 504
    assert b"timed out" in body


async def test_upstream_dying_mid_body_truncates_the_client_response(stack: h.Stack) -> None:
    async with stack.client.get("/api/users/cut") as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_keep_alive_connections_are_reused(stack: h.Stack) -> None:
    for _ in range(5):
        resp, _ = await stack.get("/api/users/1")
        assert resp.status == 200
    peers = {r.header("X-Forwarded-For") for r in stack.users.received}
    assert peers == {"127.0.0.1"}
    # one pooled connection served them all: the upstream saw one client port
    app_proxy = stack.client.app[proxy_app.PROXY] if stack.client.app else None
    assert app_proxy is not None
    connector = app_proxy.session.connector
    assert connector is not None
    assert len(connector._conns) == 1  # the pool's idle connections


async def test_request_metrics_per_route_and_code(stack: h.Stack) -> None:
    await stack.get("/api/users/1")
    await stack.get("/api/users/status?code=503")
    await stack.get("/nowhere")
    await stack.get("/down/x")
    text = metrics.render_prometheus([stack.registry])
    assert 'gatetrace_gateway_requests_total{route="users",code="200"} 1' in text
    assert 'gatetrace_gateway_requests_total{route="users",code="503"} 1' in text
    assert 'gatetrace_gateway_requests_total{route="",code="404"} 1' in text
    assert 'gatetrace_gateway_requests_total{route="down",code="502"} 1' in text
    assert 'gatetrace_gateway_request_duration_seconds_count{route="users"} 2' in text


async def test_head_request_keeps_content_length(stack: h.Stack) -> None:
    async with stack.client.head("/api/users/1") as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 0
        assert await resp.read() == b""
