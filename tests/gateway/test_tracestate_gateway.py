"""W3C Trace Context Level 2 ``tracestate`` through a running gateway on 127.0.0.1: what a
client sends is extracted by the Level 2 rules and injected upstream (the same members,
in order), or discarded as a whole; the trace id is kept either way."""

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from serverharness import TOKEN, upstream

from gatetrace.gateway import config, server

pytestmark = pytest.mark.timeout(60)

TRACE = "12345678901234567890123456789012"
TP = f"00-{TRACE}-1234567890123456-01"

FORWARDED = {
    "Level 2 keys with @": ["foo@=1,foo@@bar=2,foo@bar@baz=3,1foo=4,7=5"],
    "241-char tenant": ["t" * 241 + "@" + "v" * 14 + "=1"],
    "242-char tenant, short system": ["t" * 242 + "@v=1"],
    "15-char system": ["t@" + "v" * 15 + "=1"],
    "256-char key": ["z" * 256 + "=1"],
    "OWS and empty members": ["foo=1 \t , ,\t bar=2,"],
    "several header fields": ["foo=1", "bar=2", "baz=3"],
    "32 members": [",".join(f"k{i:02d}=v" for i in range(32))],
}
EXPECTED = {
    "Level 2 keys with @": "foo@=1,foo@@bar=2,foo@bar@baz=3,1foo=4,7=5",
    "OWS and empty members": "foo=1,bar=2",
    "several header fields": "foo=1,bar=2,baz=3",
}
DISCARDED = {
    "key starting with @": ["@foo=1,bar=2"],
    "257-char key": ["foo=1", "z" * 257 + "=1"],
    "upper-case key": ["FOO=1,bar=2"],
    "33 members": [",".join(f"k{i:02d}=v" for i in range(33))],
    "empty value": ["foo=,bar=3"],
    "value with =": ["foo=bar=baz"],
}


@contextlib.asynccontextmanager
async def _gateway() -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    async with upstream() as up:
        doc = {
            "listen": "127.0.0.1:0",
            "admin": {"listen": "127.0.0.1:0"},
            "routes": [{"name": "users", "prefix": "/api/users", "upstream": up}],
            "tracing": {
                "sampling": {"sampler": {"type": "const", "decision": True}},
                "propagation": {"extract": ["tracecontext"], "inject": ["tracecontext"]},
                "reporters": [{"type": "memory"}],
            },
        }
        gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.5)
        await gw.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield gw, http
        finally:
            await gw.stop()


async def _upstream_saw(
    gw: server.Gateway, http: aiohttp.ClientSession, tracestate: list[str]
) -> dict[str, str]:
    headers = [("traceparent", TP), *(("tracestate", v) for v in tracestate)]
    async with http.get(gw.proxy_url + "/api/users/1", headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    return {k.lower(): v for k, v in body["headers"].items()}


async def test_level_2_tracestates_are_continued_and_bad_ones_discarded() -> None:
    async with _gateway() as (gw, http):
        for name, sent in FORWARDED.items():
            saw = await _upstream_saw(gw, http, sent)
            assert saw["traceparent"].split("-")[1] == TRACE, name
            want = EXPECTED.get(name, ",".join(sent))
            assert saw.get("tracestate") == want, name
        for name, sent in DISCARDED.items():
            saw = await _upstream_saw(gw, http, sent)
            assert saw["traceparent"].split("-")[1] == TRACE, name  # the trace goes on
            assert "tracestate" not in saw, name


async def test_duplicated_keys_keep_the_first_member() -> None:
    async with _gateway() as (gw, http):
        saw = await _upstream_saw(gw, http, ["foo=1,bar=2", "foo=3"])
        assert saw["tracestate"] == "foo=1,bar=2"


async def test_over_512_characters_long_entries_go_first_then_from_the_right() -> None:
    long_member = "big=" + "x" * 200
    small = [f"s{i:02d}=" + "y" * 40 for i in range(10)]  # 10 x 44 chars
    async with _gateway() as (gw, http):
        saw = await _upstream_saw(gw, http, [",".join([small[0], long_member, *small[1:]])])
        kept = saw["tracestate"].split(",")
        assert "big=" + "x" * 200 not in kept  # the entry over 128 characters went first
        assert kept == small[: len(kept)]  # then whole entries from the right
        assert len(saw["tracestate"]) <= 512
        assert len(kept) == 10  # 10 * 44 + 9 = 449: every small one fits
