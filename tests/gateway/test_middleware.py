"""The tracing middleware end to end: client -> gateway -> upstream -> nested upstream."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from proxyharness import ALL_FORMATS, RecordingProcessor, Stack, make_active, start_stack

from gatetrace.gateway import proxy_app
from gatetrace.runtime import metrics, span

SERVER, CLIENT = span.SpanKind.SERVER, span.SpanKind.CLIENT
REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{REMOTE_TRACE}-{REMOTE_SPAN}-01"


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    collector = RecordingProcessor()
    registry = metrics.Registry()
    active = make_active(
        collector,
        registry=registry,
        extract=ALL_FORMATS,
        inject=["tracecontext", "baggage"],
        header_tags=[("x-request-id", "http.request_id"), ("Authorization", "auth")],
    )
    async with start_stack(active, collector, registry) as s:
        yield s


async def test_span_tree_across_gateway_upstream_and_nested_upstream(stack: Stack) -> None:
    resp, body = await stack.get("/api/users/nested", headers={"traceparent": TRACEPARENT})
    assert resp.status == 200
    assert body.startswith(b'nested:{"service": "nested"')
    server = stack.gateway.one(SERVER)
    client = stack.gateway.one(CLIENT)
    users = stack.users.collector.one(SERVER)
    users_client = stack.users.collector.one(CLIENT)
    leaf = stack.nested.collector.one(SERVER)
    trace_ids = {s.context.trace_id_hex for s in (server, client, users, users_client, leaf)}
    assert trace_ids == {REMOTE_TRACE}
    assert server.parent_id == int(REMOTE_SPAN, 16)
    assert client.parent_id == server.span_id
    assert users.parent_id == client.span_id
    assert users_client.parent_id == users.span_id
    assert leaf.parent_id == users_client.span_id
    assert server.name == "GET /api/users"
    assert client.name == "GET"
    assert server.resource.service_name == "api-gateway"
    assert client.end_ns is not None
    assert server.end_ns is not None
    assert server.start_ns <= client.start_ns
    assert client.end_ns <= server.end_ns


async def test_server_and_client_span_attributes_follow_http_semconv(stack: Stack) -> None:
    await stack.get(
        "/api/users/7?token=secret&page=2",
        headers={"User-Agent": "tests/1.0", "X-Request-Id": "req-1"},
    )
    server = stack.gateway.one(SERVER)
    port = stack.client.port
    assert server.tags["http.request.method"] == "GET"
    assert server.tags["url.path"] == "/api/users/7"
    assert server.tags["url.query"] == "token=<redacted>&page=2"
    assert server.tags["url.scheme"] == "http"
    assert server.tags["http.route"] == "/api/users"
    assert server.tags["http.response.status_code"] == 200
    assert server.tags["server.address"] == "127.0.0.1"
    assert server.tags["server.port"] == port
    assert server.tags["client.address"] == "127.0.0.1"
    assert server.tags["network.peer.address"] == "127.0.0.1"
    assert server.tags["network.protocol.version"] == "1.1"
    assert server.tags["user_agent.original"] == "tests/1.0"
    assert server.tags["gatetrace.route"] == "users"
    assert server.tags["gatetrace.upstream.namespace"] == "shop"
    assert server.tags["http.request_id"] == "req-1"
    assert "error.type" not in server.tags
    assert not server.is_error
    client = stack.gateway.one(CLIENT)
    assert client.tags["http.request.method"] == "GET"
    assert client.tags["url.full"] == stack.upstream_url + "/api/users/7?token=<redacted>&page=2"
    assert client.tags["server.address"] == "127.0.0.1"
    assert client.tags["http.response.status_code"] == 200
    assert client.tags["gatetrace.route"] == "users"
    assert all("secret" not in str(v) for s in stack.gateway.spans for v in s.tags.values())


async def test_the_spans_share_their_route_level_tags_and_requests_reuse_them(
    stack: Stack,
) -> None:
    """What every request to a route with one method and Host records is one shared block
    per span kind (the encoders write it as one cached fragment); the per-request values
    are the span's own."""
    for i in range(2):
        await stack.get(f"/api/users/{i}", headers={"User-Agent": f"tests/{i}"})
    first, second = stack.gateway.by_kind(SERVER)
    assert first.shared is not None and first.shared is second.shared
    assert first.shared.keys == {
        "gatetrace.sampler.type",  # the sampler's block, then the route's: one block
        "gatetrace.sampler.param",
        "http.request.method",
        "url.scheme",
        "network.protocol.version",
        "server.address",
        "server.port",
        "http.route",
        "gatetrace.route",
        "gatetrace.upstream.namespace",
    }
    assert list(first.tags.items())[: len(first.shared)] == list(first.shared.items)
    assert (first.tags["url.path"], second.tags["url.path"]) == ("/api/users/0", "/api/users/1")
    assert second.tags["user_agent.original"] == "tests/1"
    clients = stack.gateway.by_kind(CLIENT)
    assert clients[0].shared is not None and clients[0].shared is clients[1].shared
    assert clients[0].shared.keys == {
        "http.request.method",
        "server.address",
        "server.port",
        "gatetrace.route",
        "gatetrace.upstream.namespace",
    }
    assert "url.full" not in clients[0].shared.keys


async def test_long_request_values_are_cut_to_the_span_limit(stack: Stack) -> None:
    limit = span.SpanLimits().max_tag_value_length
    host, agent = "h" * (limit + 100), "a" * (limit + 1)
    resp, _ = await stack.get(
        "/api/users/7", headers={"Host": host, "User-Agent": agent, "X-Request-Id": "r" * 5000}
    )
    assert resp.status == 200
    server = stack.gateway.one(SERVER)
    assert server.tags["server.address"] == host[:limit]
    assert server.tags["user_agent.original"] == agent[:limit]
    assert server.tags["http.request_id"] == "r" * limit


_LIMIT = span.SpanLimits().max_tag_value_length


@pytest.mark.parametrize(
    ("path", "headers", "kind", "tag", "cuts"),
    [  # a long path or query is cut twice: the server's url.path/query, the client's url.full
        ("/api/users/" + "p" * _LIMIT, {}, SERVER, "url.path", 2),
        ("/api/users/7?q=" + "v" * _LIMIT, {}, SERVER, "url.query", 2),
        ("/api/users/7", {"Host": "h" * (_LIMIT + 1)}, SERVER, "server.address", 1),
        ("/api/users/7", {"User-Agent": "a" * (_LIMIT + 1)}, SERVER, "user_agent.original", 1),
        ("/api/users/7", {"X-Request-Id": "r" * (_LIMIT + 1)}, SERVER, "http.request_id", 1),
        ("/api/users/" + "p" * _LIMIT, {}, CLIENT, "url.full", 2),
    ],
    ids=["path", "query", "host", "user-agent", "header-tag", "client-url"],
)
async def test_each_long_value_alone_is_cut_and_counted(
    stack: Stack, path: str, headers: dict[str, str], kind: span.SpanKind, tag: str, cuts: int
) -> None:
    """The middleware skips the span's own length check only when every value that may be
    long fits: one long value, whichever, is still cut (and counted)."""
    limits = stack.registry.metrics["gatetrace_span_limits_hit"]
    assert isinstance(limits, metrics.Counter)
    before = limits.value(("value",))
    resp, _ = await stack.get(path, headers=headers)
    assert resp.status == 200
    value = stack.gateway.one(kind).tags[tag]
    assert isinstance(value, str)
    assert len(value) == _LIMIT
    assert limits.value(("value",)) == before + cuts


async def test_values_together_longer_than_the_limit_are_each_kept_whole(stack: Stack) -> None:
    half = _LIMIT // 2 + 10
    agent, request_id = "a" * half, "r" * half
    resp, _ = await stack.get(
        "/api/users/7", headers={"User-Agent": agent, "X-Request-Id": request_id}
    )
    assert resp.status == 200
    server = stack.gateway.one(SERVER)
    assert server.tags["user_agent.original"] == agent
    assert server.tags["http.request_id"] == request_id


async def test_unknown_method_is_other_with_the_original_kept(stack: Stack) -> None:
    async with stack.client.request("PURGE", "/api/users/1") as resp:
        assert resp.status == 200
    server = stack.gateway.one(SERVER)
    assert server.name == "_OTHER /api/users"
    assert server.tags["http.request.method"] == "_OTHER"
    assert server.tags["http.request.method_original"] == "PURGE"


async def test_response_carries_the_trace_id(stack: Stack) -> None:
    resp, _ = await stack.get("/api/users/1")
    assert resp.headers["X-Trace-Id"] == stack.gateway.one(SERVER).context.trace_id_hex
    resp, _ = await stack.get("/nowhere")
    assert resp.status == 404
    assert len(resp.headers["X-Trace-Id"]) == 32
    resp, _ = await stack.get("/down/x")
    assert resp.status == 502
    assert len(resp.headers["X-Trace-Id"]) == 32


async def test_streamed_response_carries_the_trace_id(stack: Stack) -> None:
    stack.users.gate.set()
    async with stack.client.get("/api/users/stream") as resp:
        await resp.read()
    assert resp.headers["X-Trace-Id"] == stack.gateway.one(SERVER).context.trace_id_hex


async def test_no_route_gets_a_server_span_named_by_method(stack: Stack) -> None:
    resp, _ = await stack.get("/nowhere")
    assert resp.status == 404
    server = stack.gateway.one(SERVER)
    assert server.name == "GET"
    assert server.tags["http.response.status_code"] == 404
    assert "http.route" not in server.tags
    assert not server.is_error
    assert stack.gateway.by_kind(CLIENT) == []


async def test_upstream_5xx_marks_the_server_span_failed(stack: Stack) -> None:
    resp, _ = await stack.get("/api/users/status?code=503")
    assert resp.status == 503
    server = stack.gateway.one(SERVER)
    client = stack.gateway.one(CLIENT)
    assert server.is_error
    assert server.tags["error.type"] == "503"
    assert client.is_error
    assert client.tags["error.type"] == "503"


async def test_upstream_4xx_fails_only_the_client_span(stack: Stack) -> None:
    await stack.get("/api/users/status?code=404")
    assert not stack.gateway.one(SERVER).is_error
    assert stack.gateway.one(CLIENT).is_error


async def test_upstream_connect_failure_is_recorded(stack: Stack) -> None:
    resp, _ = await stack.get("/down/x")
    assert resp.status == 502
    server = stack.gateway.one(SERVER)
    client = stack.gateway.one(CLIENT)
    for s in (server, client):
        assert s.is_error
        assert s.tags["error.type"] == "ClientConnectorError"
    assert server.tags["http.response.status_code"] == 502
    assert "http.response.status_code" not in client.tags
    (event,) = (log.fields for log in client.logs if log.fields.get("event") == "exception")
    assert event["exception.type"] == "aiohttp.client_exceptions.ClientConnectorError"
    assert event["exception.message"]


async def test_upstream_timeout_is_recorded(stack: Stack) -> None:
    resp, _ = await stack.get("/api/billing/slow?ms=2000")
    assert resp.status == 504
    server = stack.gateway.one(SERVER)
    assert server.is_error
    assert server.tags["error.type"] == "timeout"
    assert server.tags["http.response.status_code"] == 504


async def test_upstream_failure_mid_body_is_recorded(stack: Stack) -> None:
    async with stack.client.get("/api/users/cut") as resp:
        with pytest.raises(Exception, match=r"Response payload is not completed|Connection"):
            await resp.read()
    server = stack.gateway.one(SERVER)
    assert server.is_error
    assert server.tags["error.type"] == "ClientPayloadError"


async def test_sensitive_headers_are_never_recorded(stack: Stack) -> None:
    await stack.get(
        "/api/users/1",
        headers={
            "Authorization": "Bearer topsecret",
            "Cookie": "session=topsecret",
            "Proxy-Authorization": "Basic topsecret",
            "X-Request-Id": "r-2",
        },
    )
    for s in stack.gateway.spans:
        assert "auth" not in s.tags
        for key, value in s.tags.items():
            assert "topsecret" not in str(value), key
        for log in s.logs:
            assert "topsecret" not in str(log.fields)
    # the headers themselves still reach the upstream: the proxy only never records them
    assert stack.users.received[-1].header("Authorization") == "Bearer topsecret"


async def test_untraced_fast_path_does_nothing_and_passes_trace_headers(stack: Stack) -> None:
    stack.holder._current = None  # tracing off: no config loaded
    resp, _ = await stack.get("/api/users/1", headers={"traceparent": TRACEPARENT, "b3": "x"})
    assert resp.status == 200
    assert "X-Trace-Id" not in resp.headers
    assert stack.gateway.spans == []
    seen = stack.users.received[-1]
    assert seen.header("traceparent") == TRACEPARENT
    assert seen.header("b3") == "x"


async def test_live_swap_applies_to_the_next_request(stack: Stack) -> None:
    fresh = RecordingProcessor()
    stack.holder.swap(make_active(fresh, inject=["b3"], revision=2))
    await stack.get("/api/users/1")
    assert stack.gateway.spans == []
    assert len(fresh.spans) == 2
    seen = stack.users.received[-1]
    assert seen.header("b3") is not None
    assert seen.header("traceparent") is None


async def test_malformed_trace_headers_start_a_new_trace(stack: Stack) -> None:
    resp, _ = await stack.get(
        "/api/users/1",
        headers={
            "traceparent": "00-zzzz-not-hex-01",
            "b3": "garbage",
            "uber-trace-id": "::::",
            "X-Trace-Id": "0" * 32,
            "baggage": "=novalue,,;;;",
        },
    )
    assert resp.status == 200
    server = stack.gateway.one(SERVER)
    assert server.parent_id is None
    text = metrics.render_prometheus([stack.registry])
    assert "gatetrace_propagation_failures_total" in text


async def test_huge_trace_headers_do_not_break_the_request(stack: Stack) -> None:
    huge_baggage = ",".join(f"k{i}={'v' * 50}" for i in range(140))  # ~7.6 kB
    resp, _ = await stack.get(
        "/api/users/1",
        headers={"traceparent": "00-" + "a" * 7000, "baggage": huge_baggage},
    )
    assert resp.status == 200
    sent = stack.users.received[-1].header("baggage") or ""
    assert len(sent.split(",")) <= 64
    assert len(sent.encode()) <= 8192


async def test_oversized_headers_are_rejected_by_the_server_not_crashing_it(stack: Stack) -> None:
    resp, body = await stack.get("/api/users/1", headers={"baggage": "k=" + "v" * 20000})
    assert resp.status == 400
    assert b"Got more than" in body
    assert stack.users.received == []
    resp, _ = await stack.get("/api/users/1")
    assert resp.status == 200


async def test_header_floods_are_bounded(stack: Stack) -> None:
    flood = [("baggage", ",".join(f"k{i}_{j}=v" for j in range(10))) for i in range(60)]
    flood += [("X-Forwarded-For", f"203.0.113.{i % 250}") for i in range(30)]
    async with stack.client.get("/api/users/1", headers=flood) as resp:
        assert resp.status == 200
    sent = stack.users.received[-1].all("baggage")
    assert len(sent) == 1
    assert len(sent[0].split(",")) <= 64
    server = stack.gateway.one(SERVER)
    assert server.tags["client.address"] == "127.0.0.1"


async def test_too_many_headers_are_refused_and_the_proxy_keeps_serving(stack: Stack) -> None:
    headers = [(f"X-H{i}", "v") for i in range(500)]
    async with stack.client.get("/api/users/1", headers=headers) as resp:
        assert resp.status == 400
        assert "Too many headers" in await resp.text()
    assert stack.users.received == []
    resp, _ = await stack.get("/api/users/1")
    assert resp.status == 200


class _BrokenProcessor:
    """A reporter that fails on every span."""

    def on_end(self, s: span.Span) -> None:
        raise RuntimeError("reporter down")


async def test_a_failing_reporter_never_fails_the_request() -> None:
    registry = metrics.Registry()
    active = make_active(RecordingProcessor(), registry=registry)
    active.tracer.processor = _BrokenProcessor()
    async with start_stack(active, RecordingProcessor(), registry) as stack:
        for _ in range(3):
            resp, _ = await stack.get("/api/users/1")
            assert resp.status == 200
        assert active.tracer.metrics.processor_errors.total() == 6


async def test_client_going_away_mid_stream_is_logged_and_the_proxy_keeps_serving(
    stack: Stack,
) -> None:
    resp = await stack.client.get("/api/users/stream?chunks=3")
    await asyncio.wait_for(resp.content.readexactly(100), 5)
    connection = resp.connection
    assert connection is not None
    assert connection.transport is not None
    connection.transport.abort()
    resp.close()
    stack.users.gate.set()
    for _ in range(100):  # the gateway notices on its next write
        if stack.gateway.by_kind(SERVER):
            break
        await asyncio.sleep(0.05)
    server = stack.gateway.one(SERVER)
    assert any(log.fields.get("event") == "client_aborted" for log in server.logs), (
        server.logs,
        server.tags,
    )
    assert not server.is_error
    stack.gateway.spans.clear()
    again, _ = await stack.get("/api/users/1")
    assert again.status == 200


async def test_credentials_in_an_upstream_url_never_reach_a_span() -> None:
    """OTel HTTP conventions: ``url.full`` MUST NOT hold credentials; they are written as
    ``REDACTED:REDACTED@`` while the request still carries them (Basic auth upstream)."""
    from aiohttp import test_utils, web
    from proxyharness import gateway_config

    from gatetrace.gateway import proxy_app, state

    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(text="ok")

    upstream_app = web.Application()
    upstream_app.router.add_get("/{tail:.*}", handler)
    upstream = test_utils.TestServer(upstream_app, host="127.0.0.1")
    await upstream.start_server()
    collector = RecordingProcessor()
    registry = metrics.Registry()
    port = upstream.port
    settings = gateway_config(
        "",
        routes=[
            {"name": "a", "prefix": "/a", "upstream": f"http://svc:s3cret@127.0.0.1:{port}/v1"}
        ],
    )
    holder = state.TracingHolder(make_active(collector, registry=registry))
    client = test_utils.TestClient(
        test_utils.TestServer(
            proxy_app.make_proxy_app(settings, holder, registry), host="127.0.0.1"
        )
    )
    await client.start_server()
    try:
        async with client.get("/a/x?api_key=k&q=1") as resp:
            assert resp.status == 200
    finally:
        await client.close()
        await upstream.close()
    assert seen == ["Basic c3ZjOnMzY3JldA=="]  # the credentials still authenticate the call
    (client_span,) = collector.by_kind(CLIENT)
    assert client_span.tags["url.full"] == (
        f"http://REDACTED:REDACTED@127.0.0.1:{port}/v1/a/x?api_key=<redacted>&q=1"
    )
    assert all("s3cret" not in str(v) for s in collector.spans for v in s.tags.values())


async def test_the_server_tag_block_cache_is_bounded_and_skips_long_hosts(stack: Stack) -> None:
    """Host headers are client data: the cache of the server spans' shared tags (keyed by
    route, method, Host, scheme and version) stays small."""
    tracing = stack.client.app[proxy_app.TRACING]
    for i in range(300):
        resp, _ = await stack.get("/api/users/7", headers={"Host": f"h{i}.example:8{i:03d}"})
        assert resp.status == 200
    assert 0 < len(tracing._blocks) <= 256
    long_host = "x" * 1000
    resp, _ = await stack.get("/api/users/7", headers={"Host": long_host})
    assert resp.status == 200
    assert all(key[2] != long_host for key in tracing._blocks)
    servers = stack.gateway.by_kind(SERVER)
    assert servers[-1].tags["server.address"] == long_host
    assert servers[-2].tags["server.address"] == "h299.example"
    assert servers[-2].tags["server.port"] == 8299
