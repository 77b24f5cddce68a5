"""``POST /v1/traces`` on a running gateway: OTLP/HTTP spans into the store, next to the
gateway's own, per the OTLP/HTTP spec (opentelemetry-proto ``docs/specification.md``);
every refusal is a clear 4xx in the request's encoding, with nothing stored."""

import contextlib
import gzip
import os
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import gt_spans
import pytest
from otlptools import (
    JSON,
    PROTOBUF,
    as_json,
    attribute,
    post,
    request,
    response_of,
    span,
    status_of,
)
from serverharness import ALWAYS, AUTH, TOKEN, running, settings_for, upstream, wait_for

from gatetrace.gateway import config, otlp_data, server

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def gateway(**otlp: Any) -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    async with upstream() as up, running(settings_for(up, tracing=ALWAYS, otlp=otlp)) as pair:
        yield pair


async def metric(http: aiohttp.ClientSession, gw: server.Gateway, line: str) -> float:
    text = await (await http.get(gw.admin_url + "/metrics")).text()
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


async def trace_of(
    http: aiohttp.ClientSession, gw: server.Gateway, trace_id: bytes
) -> dict[str, Any]:
    async with http.get(f"{gw.admin_url}/api/traces/{trace_id.hex()}", headers=AUTH) as got:
        assert got.status == 200, await got.text()
        return (await got.json())["data"][0]  # type: ignore[no-any-return]


# -- full success, in both encodings ---------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "gzipped"), [(PROTOBUF, False), (JSON, False), (PROTOBUF, True), (JSON, True)]
)
async def test_spans_are_stored_and_answered_with_an_empty_response(
    content_type: str, gzipped: bool
) -> None:
    sent = span("GET /users", attributes=[])
    body = request("users", [sent]).SerializeToString()
    if content_type == JSON:
        body = as_json(request("users", [sent]))
    async with gateway() as (gw, http):
        status, answered_as, answer, _ = await post(
            http, gw.admin_url, body, content_type=content_type, token=TOKEN, gzipped=gzipped
        )
        assert (status, answered_as) == (200, content_type)
        # full success: partial_success unset (protobuf: no bytes; JSON: an empty object)
        assert answer == (b"{}" if content_type == JSON else b"")
        trace = await trace_of(http, gw, sent.trace_id)
        assert [s["operationName"] for s in trace["spans"]] == ["GET /users"]
        assert trace["processes"]["p1"]["serviceName"] == "users"
        assert await metric(http, gw, 'gatetrace_otlp_spans_total{result="stored"}') == 1


async def test_an_empty_request_succeeds() -> None:
    async with gateway() as (gw, http):
        assert (await post(http, gw.admin_url, b"", token=TOKEN))[:3] == (200, PROTOBUF, b"")
        assert (await post(http, gw.admin_url, b"{}", content_type=JSON, token=TOKEN))[2] == b"{}"
        assert len(gw.store) == 0


async def test_service_spans_join_the_gateways_trace_in_every_query() -> None:
    async with gateway() as (gw, http):
        proxied = await http.get(gw.proxy_url + "/api/users/7")
        echoed = await proxied.json()
        _, trace_hex, parent_hex, _ = echoed["headers"]["traceparent"].split("-")
        trace_id = bytes.fromhex(trace_hex)
        await wait_for(lambda: len(gw.store) >= 2)
        child = span(
            "load user",
            trace_id=trace_id,
            parent=bytes.fromhex(parent_hex),
            start_ns=time.time_ns() - 10_000_000,
        )
        child.status.code = 2
        child.status.message = "db down"
        body = request("users", [child]).SerializeToString()
        assert (await post(http, gw.admin_url, body, token=TOKEN))[0] == 200

        trace = await trace_of(http, gw, trace_id)
        services = {p["serviceName"] for p in trace["processes"].values()}
        assert services == {"edge", "users"}
        mine = next(s for s in trace["spans"] if s["operationName"] == "load user")
        assert mine["references"] == [
            {"refType": "CHILD_OF", "traceID": trace_hex, "spanID": parent_hex}
        ]
        found = await (await http.get(gw.admin_url + "/api/services", headers=AUTH)).json()
        assert found["data"] == ["edge", "users"]
        deps = await (
            await http.get(gw.admin_url + "/api/dependencies?lookback=60000", headers=AUTH)
        ).json()
        assert {"parent": "edge", "child": "users", "callCount": 1} in deps["data"]
        searched = await (
            await http.get(gw.admin_url + "/api/traces?service=users", headers=AUTH)
        ).json()
        assert [t["traceID"] for t in searched["data"]] == [trace_hex]
        stats = await (
            await http.get(gw.admin_url + "/api/stats?service=users&window=1m", headers=AUTH)
        ).json()
        assert (stats["count"], stats["errors"]) == (1, 1)


# -- the token -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_without_the_admin_token_nothing_is_stored(token: str | None) -> None:
    async with gateway() as (gw, http):
        body = request("users", [span()]).SerializeToString()
        status, answered_as, answer, headers = await post(http, gw.admin_url, body, token=token)
        assert (status, answered_as) == (401, PROTOBUF)
        assert "Bearer" in headers["WWW-Authenticate"]
        code, message = status_of(answered_as, answer)  # a google.rpc.Status, as every 4xx
        assert code == 16  # UNAUTHENTICATED
        expected = "invalid admin token" if token else "missing Authorization header"
        assert message.startswith(expected)
        assert len(gw.store) == 0
        json_status = await post(http, gw.admin_url, b"{}", content_type=JSON, token=token)
        assert json_status[:2] == (401, JSON)
        assert status_of(JSON, json_status[2])[0] == 16


# -- bad data: 400 with a google.rpc.Status in the request's encoding -------------------


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        (PROTOBUF, b"\x0a\x05abc", "runs past its message"),
        (PROTOBUF, b"\x0a\x02\x12\xff", "truncated varint at byte 3"),
        (PROTOBUF, b"\x0a\x07\x12\x05\x12\x03\x2a\x01\xff", "not valid UTF-8"),
        (PROTOBUF, b"\x08" + b"\xff" * 11, "overflows 64 bits"),
        (JSON, b"{not json", "not valid JSON"),
        (JSON, b'{"resourceSpans": {}}', "resourceSpans: expected an array"),
        (
            JSON,
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected an integer",
        ),
        (
            JSON,
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "spans[0].traceId: expected hex",
        ),
    ],
)
async def test_malformed_bodies_are_400_with_a_status_naming_the_problem(
    content_type: str, body: bytes, words: str
) -> None:
    async with gateway() as (gw, http):
        status, answered_as, answer, _ = await post(
            http, gw.admin_url, body, content_type=content_type, token=TOKEN
        )
        assert (status, answered_as) == (400, content_type)
        code, message = status_of(answered_as, answer)
        assert code == 3  # INVALID_ARGUMENT
        assert words in message
        assert len(gw.store) == 0
        assert await metric(http, gw, 'gatetrace_otlp_requests_total{outcome="bad_request"}') == 1


async def test_a_ten_thousand_character_service_name_is_refused_whole() -> None:
    good = span()
    body = request("s" * 10_000, [good]).SerializeToString()
    async with gateway() as (gw, http):
        status, answered_as, answer, _ = await post(http, gw.admin_url, body, token=TOKEN)
        assert status == 400
        assert "service.name of 10000 characters, at most 256" in status_of(answered_as, answer)[1]
        assert len(gw.store) == 0


async def test_invalid_spans_are_rejected_and_the_rest_stored_partial_success() -> None:
    good = span("fine")
    bad_id = span("bad", span_id=b"\x01\x02\x03\x04")
    no_start = span("late", start_ns=0)
    body = request("users", [good, bad_id, no_start])
    async with gateway() as (gw, http):
        for content_type, payload in ((PROTOBUF, body.SerializeToString()), (JSON, as_json(body))):
            status, answered_as, answer, _ = await post(
                http, gw.admin_url, payload, content_type=content_type, token=TOKEN
            )
            assert status == 200
            rejected, message = response_of(answered_as, answer)
            assert rejected == 2
            assert "resourceSpans[0].scopeSpans[0].spans[1].spanId: 4 bytes, expected 8" in message
            assert "spans[2].startTimeUnixNano: not set" in message
        assert [s.name for s in gw.store.trace(int.from_bytes(good.trace_id, "big"))] == [
            "fine",
            "fine",
        ]
        assert len(gw.store) == 2
        assert await metric(http, gw, 'gatetrace_otlp_spans_total{result="rejected"}') == 4


# -- bounds: 413, 415, 429 ----------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_sent_with_or_without_a_length() -> None:
    big = request("users", [span(attributes=[])] * 1).SerializeToString() + b"\x00" * 4096
    async with gateway(maxBodyBytes=2048) as (gw, http):
        status, answered_as, answer, _ = await post(http, gw.admin_url, big, token=TOKEN)
        assert status == 413
        assert "exceeds the 2048-byte limit" in status_of(answered_as, answer)[1]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"\x00" * 1024

        async with http.post(
            gw.admin_url + "/v1/traces",
            data=chunks(),
            headers={**AUTH, "Content-Type": PROTOBUF},
        ) as response:
            assert response.status == 413
        assert len(gw.store) == 0


async def test_a_gzip_bomb_is_refused_without_inflating_past_the_limit() -> None:
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=9)  # ~64 KB on the wire
    assert len(bomb) < 100_000
    async with gateway(maxBodyBytes=1024 * 1024) as (gw, http):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        status, answered_as, answer, _ = await post(
            http,
            gw.admin_url,
            bomb,
            token=TOKEN,
            headers={"Content-Encoding": "gzip"},
        )
        assert status == 413
        assert "inflated body exceeds the 1048576-byte limit" in status_of(answered_as, answer)[1]
        assert len(gw.store) == 0
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        assert peak < 16 * 1024 * 1024  # the bomb inflates to 64 MiB


async def test_a_broken_gzip_body_is_400() -> None:
    async with gateway() as (gw, http):
        status, answered_as, answer, _ = await post(
            http, gw.admin_url, b"not gzip", token=TOKEN, headers={"Content-Encoding": "gzip"}
        )
        assert status == 400
        assert "body is not valid gzip" in status_of(answered_as, answer)[1]


async def test_more_spans_than_one_request_may_carry_is_413() -> None:
    body = request("users", [span() for _ in range(6)]).SerializeToString()
    async with gateway(maxSpansPerRequest=5) as (gw, http):
        status, answered_as, answer, _ = await post(http, gw.admin_url, body, token=TOKEN)
        assert status == 413
        assert "more than 5 spans in one request" in status_of(answered_as, answer)[1]
        assert len(gw.store) == 0


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Content-Type": "text/plain"}, "Content-Type 'text/plain' is not supported"),
        ({"Content-Type": PROTOBUF, "Content-Encoding": "compress"}, "Content-Encoding 'compress'"),
    ],
)
async def test_other_content_types_and_encodings_are_415(
    headers: dict[str, str], words: str
) -> None:
    async with (
        gateway() as (gw, http),
        http.post(gw.admin_url + "/v1/traces", data=b"x", headers={**AUTH, **headers}) as response,
    ):
        assert response.status == 415
        assert words in status_of(response.content_type, await response.read())[1]


async def test_over_the_ingest_rate_is_429_with_retry_after_and_nothing_stored() -> None:
    async with gateway(maxSpansPerSecond=1, maxSpansPerRequest=3) as (gw, http):
        first = request("users", [span() for _ in range(3)]).SerializeToString()
        assert (await post(http, gw.admin_url, first, token=TOKEN))[0] == 200
        second = request("users", [span() for _ in range(3)]).SerializeToString()
        status, answered_as, answer, headers = await post(http, gw.admin_url, second, token=TOKEN)
        assert status == 429
        assert int(headers["Retry-After"]) >= 2  # 3 spans at 1 span/s, the bucket near empty
        assert "over the ingest rate of 1 spans/s" in status_of(answered_as, answer)[1]
        assert len(gw.store) == 3
        assert await metric(http, gw, 'gatetrace_otlp_spans_total{result="throttled"}') == 3


async def test_the_receiver_can_be_turned_off() -> None:
    async with gateway(enabled=False) as (gw, http):
        body = request("users", [span()]).SerializeToString()
        assert (await post(http, gw.admin_url, body, token=TOKEN))[0] in (404, 405)


def test_bad_limits_are_config_errors_naming_the_field() -> None:
    with pytest.raises(config.ConfigError, match=r"otlp\.maxBodyBytes"):
        config.parse_config({"otlp": {"maxBodyBytes": 10}})
    with pytest.raises(config.ConfigError, match=r"otlp\.maxSpansPerSecond"):
        config.parse_config({"otlp": {"maxSpansPerSecond": 0}})


# -- limits on what a span keeps -------------------------------------------------------------


async def test_oversized_values_are_cut_to_the_span_limits_and_counted() -> None:
    sent = span(
        attributes=[attribute("big", "x" * 100_000)] + [attribute(f"k{i}", i) for i in range(200)]
    )
    async with gateway() as (gw, http):
        assert (
            await post(http, gw.admin_url, request("u", [sent]).SerializeToString(), token=TOKEN)
        )[0] == 200
        [stored] = gw.store.trace(int.from_bytes(sent.trace_id, "big"))
        assert len(stored.tags["big"]) == 4096  # type: ignore[arg-type]
        assert len(stored.tags) == 128
        assert await metric(http, gw, 'gatetrace_otlp_cut_total{what="value_length"}') == 1
        assert await metric(http, gw, 'gatetrace_otlp_cut_total{what="attributes"}') == 73


async def test_a_large_request_is_decoded_built_and_stored_in_steps() -> None:
    sent = [span(attributes=[]) for _ in range(3000)]
    body = request("users", sent).SerializeToString()
    async with gateway() as (gw, http):
        answer, turns = await gt_spans.loop_turns(post(http, gw.admin_url, body, token=TOKEN))
        assert answer[0] == 200
        assert len(gw.store) == 3000
        # the loop ran between the steps: decoding and building each yield every DECODE_STEP
        assert turns >= 2 * 3000 // otlp_data.DECODE_STEP


async def test_spans_a_full_trace_refuses_are_reported_as_rejected() -> None:
    tracing = {**ALWAYS, "reporters": [{"type": "memory", "maxSpansPerTrace": 2}]}
    trace_id = os.urandom(16)
    body = request("users", [span(trace_id=trace_id) for _ in range(3)]).SerializeToString()
    async with upstream() as up, running(settings_for(up, tracing=tracing)) as (gw, http):
        status, answered_as, answer, _ = await post(http, gw.admin_url, body, token=TOKEN)
        assert status == 200
        rejected, message = response_of(answered_as, answer)
        assert rejected == 1
        assert "1 span(s) dropped: their trace is at the store's bound" in message
        assert len(gw.store.trace(int.from_bytes(trace_id, "big"))) == 2
        assert await metric(http, gw, 'gatetrace_otlp_spans_total{result="refused"}') == 1
        assert await metric(http, gw, 'gatetrace_otlp_spans_total{result="stored"}') == 2


async def test_a_received_resource_counts_in_the_stores_byte_bound() -> None:
    sent = [span(attributes=[]) for _ in range(3)]
    async with gateway() as (gw, http):
        small = request("users", sent[:1]).SerializeToString()
        assert (await post(http, gw.admin_url, small, token=TOKEN))[0] == 200
        one_span = gw.store.bytes
        big = request("users", sent[1:], note="x" * 4000).SerializeToString()
        assert (await post(http, gw.admin_url, big, token=TOKEN))[0] == 200
        # each span of the big resource is counted with the resource's 4000 characters
        assert gw.store.bytes - one_span >= 2 * (one_span + 4000)
