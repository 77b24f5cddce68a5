"""What the gateway extracts and injects: every format, stale headers, baggage rules."""

import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from proxyharness import ALL_FORMATS, RecordingProcessor, Stack, make_active, start_stack

from gatetrace.runtime import baggage_rules, metrics, span

SERVER, CLIENT = span.SpanKind.SERVER, span.SpanKind.CLIENT
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@contextlib.asynccontextmanager
async def _stack(
    extract: Sequence[str] = ALL_FORMATS,
    inject: Sequence[str] = ("tracecontext", "baggage"),
    rules: baggage_rules.BaggageRules | None = None,
    baggage_tag_keys: Sequence[str] = (),
    **overrides: object,
) -> AsyncIterator[Stack]:
    collector = RecordingProcessor()
    registry = metrics.Registry()
    active = make_active(
        collector,
        registry=registry,
        extract=extract,
        inject=inject,
        rules=rules,
        baggage_tag_keys=baggage_tag_keys,
    )
    async with start_stack(active, collector, registry, **overrides) as stack:
        yield stack


def _expected_headers(fmt: str, trace: str, span_id: str, flags: str = "01") -> dict[str, str]:
    return {
        "tracecontext": {"traceparent": f"00-{trace}-{span_id}-{flags}"},
        "b3": {"b3": f"{trace}-{span_id}-1"},
        "b3multi": {"X-B3-TraceId": trace, "X-B3-SpanId": span_id, "X-B3-Sampled": "1"},
        "jaeger": {"uber-trace-id": f"{trace}:{span_id}:0:1"},
        "xtrace": {"X-Trace-Id": trace, "X-Span-Id": span_id, "X-Sampled": "1"},
    }[fmt]


INCOMING = {
    "tracecontext": {"traceparent": f"00-{TRACE}-{SPAN}-01"},
    "b3": {"b3": f"{TRACE}-{SPAN}-1"},
    "b3multi": {"X-B3-TraceId": TRACE, "X-B3-SpanId": SPAN, "X-B3-Sampled": "1"},
    "jaeger": {"uber-trace-id": f"{TRACE}:{SPAN}:0:1"},
    "xtrace": {"X-Trace-Id": TRACE, "X-Span-Id": SPAN, "X-Sampled": "1"},
}
CONTEXT_FORMATS = list(INCOMING)


@pytest.mark.parametrize("fmt", CONTEXT_FORMATS)
async def test_each_format_is_extracted_and_injected(fmt: str) -> None:
    async with _stack(extract=[fmt], inject=[fmt]) as stack:
        resp, _ = await stack.get("/api/users/1", headers=INCOMING[fmt])
        assert resp.status == 200
        server = stack.gateway.one(SERVER)
        client = stack.gateway.one(CLIENT)
        assert server.context.trace_id_hex == TRACE
        assert server.parent_id == int(SPAN, 16)
        seen = stack.users.received[-1]
        for name, value in _expected_headers(fmt, TRACE, client.context.span_id_hex).items():
            assert seen.header(name) == value, name
        # the upstream service continued the same trace under the gateway's client span
        users = stack.users.collector.one(SERVER)
        assert users.parent_id == client.span_id


async def test_several_inject_formats_are_all_written() -> None:
    async with _stack(inject=["tracecontext", "b3", "jaeger", "xtrace", "b3multi"]) as stack:
        await stack.get("/api/users/1")
        client = stack.gateway.one(CLIENT)
        trace, span_id = client.context.trace_id_hex, client.context.span_id_hex
        flags = "03" if client.context.random else "01"  # W3C level 2: a random trace id
        seen = stack.users.received[-1]
        for fmt in ("tracecontext", "b3", "jaeger", "xtrace", "b3multi"):
            for name, value in _expected_headers(fmt, trace, span_id, flags).items():
                assert seen.header(name) == value, (fmt, name)


async def test_first_extract_format_wins() -> None:
    other_trace = "1" * 32
    async with _stack(extract=["b3", "tracecontext"]) as stack:
        await stack.get(
            "/api/users/1",
            headers={"traceparent": f"00-{TRACE}-{SPAN}-01", "b3": f"{other_trace}-{SPAN}-1"},
        )
        assert stack.gateway.one(SERVER).context.trace_id_hex == other_trace


async def test_stale_incoming_trace_headers_never_reach_the_upstream() -> None:
    stale = {
        "traceparent": f"00-{TRACE}-{SPAN}-01",
        "b3": f"{TRACE}-{SPAN}-1",
        "X-B3-TraceId": TRACE,
        "X-B3-SpanId": SPAN,
        "uber-trace-id": f"{TRACE}:{SPAN}:0:1",
        "uberctx-user": "u",
        "X-Baggage-user": "u",
        "X-Span-Id": SPAN,
        "jaeger-debug-id": "dbg",
    }
    async with _stack(extract=["tracecontext"], inject=["tracecontext"]) as stack:
        await stack.get("/api/users/1", headers=stale)
        client = stack.gateway.one(CLIENT)
        seen = stack.users.received[-1]
        names = {k.lower() for k, _ in seen.headers}
        for name in stale:
            if name != "traceparent":
                assert name.lower() not in names, name
        assert seen.header("traceparent") == f"00-{TRACE}-{client.context.span_id_hex}-01"


async def test_tracestate_is_carried_through() -> None:
    async with _stack(extract=["tracecontext"], inject=["tracecontext"]) as stack:
        await stack.get(
            "/api/users/1",
            headers={"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "congo=t61rcWkgMzE"},
        )
        assert stack.users.received[-1].header("tracestate") == "congo=t61rcWkgMzE"


async def test_baggage_rules_filter_what_is_forwarded() -> None:
    rules = baggage_rules.BaggageRules(allow=["tenant-id", "user", "spare"], deny=["user"])
    async with _stack(rules=rules, baggage_tag_keys=["tenant-id"]) as stack:
        await stack.get(
            "/api/users/1",
            headers={
                "traceparent": f"00-{TRACE}-{SPAN}-01",
                "baggage": "tenant-id=acme,user=alice,internal=x,spare=1",
            },
        )
        sent = stack.users.received[-1].header("baggage") or ""
        assert sorted(sent.split(",")) == ["spare=1", "tenant-id=acme"]
        server = stack.gateway.one(SERVER)
        assert server.tags["tenant-id"] == "acme"
        assert "spare" not in server.tags
        assert dict(server.context.baggage) == {"tenant-id": "acme", "spare": "1"}
        assert rules.dropped("denied") == 1
        assert rules.dropped("not_allowed") == 1


async def test_baggage_without_a_trace_context_is_kept_on_the_new_trace() -> None:
    async with _stack(baggage_tag_keys=["tenant-id"]) as stack:
        await stack.get("/api/users/1", headers={"baggage": "tenant-id=acme"})
        server = stack.gateway.one(SERVER)
        assert server.parent_id is None
        assert server.tags["tenant-id"] == "acme"
        assert stack.users.received[-1].header("baggage") == "tenant-id=acme"


async def test_baggage_limits_cut_untrusted_baggage_before_forwarding() -> None:
    rules = baggage_rules.BaggageRules(max_entries=3, max_bytes=64)
    incoming = ",".join(f"k{i}=v{i}" for i in range(20))
    async with _stack(rules=rules, inject=["tracecontext", "baggage", "jaeger"]) as stack:
        await stack.get("/api/users/1", headers={"baggage": incoming})
        seen = stack.users.received[-1]
        assert seen.header("baggage") == "k0=v0,k1=v1,k2=v2"
        assert sorted(n.lower() for n, _ in seen.headers if n.lower().startswith("uberctx-")) == [
            "uberctx-k0",
            "uberctx-k1",
            "uberctx-k2",
        ]
        assert rules.dropped("max_entries") == 17


async def test_baggage_from_other_formats_goes_through_the_same_rules() -> None:
    rules = baggage_rules.BaggageRules(allow=["ok"])
    async with _stack(rules=rules, inject=["tracecontext", "baggage"]) as stack:
        await stack.get(
            "/api/users/1",
            headers={
                "uber-trace-id": f"{TRACE}:{SPAN}:0:1",
                "uberctx-ok": "1",
                "uberctx-bad": "2",
                "X-Baggage-alsobad": "3",
            },
        )
        assert stack.users.received[-1].header("baggage") == "ok=1"


async def test_custom_trace_id_header_name() -> None:
    async with _stack(traceIdHeader="X-Request-Trace") as stack:
        resp, _ = await stack.get("/api/users/1")
        assert resp.headers["X-Request-Trace"] == stack.gateway.one(SERVER).context.trace_id_hex
        assert "X-Trace-Id" not in resp.headers


async def test_configured_sensitive_headers_are_never_recorded() -> None:
    collector = RecordingProcessor()
    active = make_active(collector, header_tags=[("x-api-key", "api.key"), ("x-tenant", "tenant")])
    async with start_stack(active, collector, sensitiveHeaders=["X-Api-Key"]) as stack:
        await stack.get("/api/users/1", headers={"X-Api-Key": "k-secret", "X-Tenant": "t1"})
        server = stack.gateway.one(SERVER)
        assert server.tags["tenant"] == "t1"
        assert "api.key" not in server.tags


async def test_client_address_comes_from_a_trusted_proxy_chain() -> None:
    chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.1.2.3"}
    collector = RecordingProcessor()
    trusted = ["127.0.0.1/32", "10.0.0.0/8"]
    async with start_stack(make_active(collector), collector, trustedProxies=trusted) as stack:
        await stack.get("/api/users/1", headers=chain)
        server = stack.gateway.one(SERVER)
        assert server.tags["client.address"] == "203.0.113.7"
        assert server.tags["network.peer.address"] == "127.0.0.1"
        assert stack.users.received[-1].header("X-Forwarded-For") == (
            "198.51.100.1, 203.0.113.7, 10.1.2.3, 127.0.0.1"
        )


async def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    collector = RecordingProcessor()
    async with start_stack(
        make_active(collector), collector, trustedProxies=["10.0.0.0/8"]
    ) as stack:
        await stack.get("/api/users/1", headers={"X-Forwarded-For": "203.0.113.7"})
        assert stack.gateway.one(SERVER).tags["client.address"] == "127.0.0.1"


async def test_trusted_peer_may_set_forwarded_proto() -> None:
    collector = RecordingProcessor()
    async with start_stack(
        make_active(collector), collector, trustedProxies=["127.0.0.0/8"]
    ) as stack:
        await stack.get("/api/users/1", headers={"X-Forwarded-Proto": "https"})
        assert stack.users.received[-1].header("X-Forwarded-Proto") == "https"
