"""W3C Trace Context Level 2 ``tracestate`` through a running gateway on 127.0.0.1: what a
client sends is extracted by the Level 2 rules and injected upstream (the same members,
in order), or discarded as a whole; the trace id is kept either way."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import multidict
import proxyharness
import pytest
from serverharness import running, settings_for, upstream

from gatetrace.gateway import server
from gatetrace.runtime import metrics
from gatetrace.runtime.sampling import const, parentbased

pytestmark = pytest.mark.timeout(60)

TRACE = "12345678901234567890123456789012"
SPAN = "1234567890123456"
TP = f"00-{TRACE}-{SPAN}-01"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

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
    tracing = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "propagation": {"extract": ["tracecontext"], "inject": ["tracecontext"]},
        "reporters": [{"type": "memory"}],
    }
    async with upstream() as up, running(settings_for(up, tracing=tracing)) as gw:
        yield gw


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


# --- rule by rule through the proxy stack: every field the upstream got, both hops ----------

LEVEL_2: list[tuple[str, list[str], str | None]] = [
    # (rule, tracestate fields the client sends, what the upstream gets; None: no tracestate)
    ("key: lcalpha first", ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"], None),
    ("key: digit first", ["1foo=1,7=2"], None),
    ("key: every keychar", ["abcdefghijklmnopqrstuvwxyz0123456789_-*/@=1"], None),
    ("key: @ at the end", ["foo@=1,bar=2"], None),
    ("key: @@", ["foo@@bar=1,bar=2"], None),
    ("key: two @", ["foo@bar@baz=1,bar=2"], None),
    ("key: 15-char system", ["foo=1", "t@" + "v" * 15 + "=1"], "foo=1,t@" + "v" * 15 + "=1"),
    ("key: 241-char tenant", ["t" * 241 + "@" + "v" * 14 + "=1"], None),
    ("key: 242-char tenant", ["t" * 242 + "@v=1"], None),
    ("key: 256 chars", ["foo=1", "z" * 256 + "=1"], "foo=1," + "z" * 256 + "=1"),
    ("key: starts with @", ["@foo=1,bar=2"], ""),
    ("key: starts with _", ["_foo=1,bar=2"], ""),
    ("key: 257 chars", ["foo=1", "z" * 257 + "=1"], ""),
    ("key: upper case", ["FOO=1"], ""),
    ("key: dot", ["foo.bar=1"], ""),
    ("key: space before =", ["foo =1"], ""),
    ("value: every allowed char", ["foo=" + VALUE_CHARS], None),
    ("value: leading spaces kept", ["foo=  1,bar= 2"], None),
    ("value: trailing spaces dropped", ["foo=1   ,bar=2"], "foo=1,bar=2"),
    ("value: 256 chars", ["foo=" + "v" * 256], None),
    ("value: 257 chars", ["foo=" + "v" * 257], ""),
    ("value: empty", ["foo=,bar=3"], ""),
    ("value: only spaces", ["foo=   ,bar=3"], ""),
    ("value: =", ["foo=bar=baz"], ""),
    ("value: no =", ["foo=1,bar"], ""),
    ("value: non-ASCII", ["foo=a\u00e9b"], ""),
    ("list: OWS", ["foo=1 \t , \t bar=2, \t baz=3"], "foo=1,bar=2,baz=3"),
    ("list: empty members", [",foo=1,, ,\t,bar=2,"], "foo=1,bar=2"),
    ("list: empty header", [""], ""),
    ("list: empty field among others", ["foo=1", "", "bar=2"], "foo=1,bar=2"),
    ("list: fields combined in order", ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"], None),
    ("duplicates: first kept", ["foo=1,foo=2,bar=3"], "foo=1,bar=3"),
    ("duplicates: across fields", ["foo=1", "foo=2"], "foo=1"),
    ("32 members", [",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33))], None),
    ("33 members", [",".join(f"bar{i:02d}={i:02d}" for i in range(1, 34))], ""),
    (
        "512 chars",
        [",".join(["a" * 124 + "=123", *(f"b{i}=" + "v" * 124 for i in range(3))])],
        None,
    ),
]
"""``None``: the fields joined by commas; ``""``: discarded (the trace goes on without it)."""


def _forwarded(fields: list[str], expected: str | None) -> str | None:
    if expected is None:
        return ",".join(fields)
    return expected or None


@contextlib.asynccontextmanager
async def _stack(
    extract: tuple[str, ...] = ("tracecontext", "baggage", "b3"), **sampler: Any
) -> AsyncIterator[proxyharness.Stack]:
    collector = proxyharness.RecordingProcessor()
    registry = metrics.Registry()
    active = proxyharness.make_active(
        collector,
        registry=registry,
        extract=extract,
        inject=["tracecontext", "baggage"],
        **sampler,
    )
    async with proxyharness.start_stack(active, collector, registry) as stack:
        yield stack


async def _send(
    stack: proxyharness.Stack, path: str, fields: list[str], traceparent: str | None = TP
) -> proxyharness.Received:
    headers = multidict.CIMultiDict[str]()
    if traceparent is not None:
        headers.add("traceparent", traceparent)
    for field in fields:
        headers.add("tracestate", field)
    before = len(stack.users.received)
    response, _ = await stack.get(path, headers=headers)
    assert response.status == 200
    assert len(stack.users.received) == before + 1
    return stack.users.received[-1]


def _trace_id(seen: proxyharness.Received) -> str:
    return (seen.header("traceparent") or "--").split("-")[1]


async def test_every_level_2_rule_extracted_then_injected_upstream() -> None:
    async with _stack() as stack:
        for rule, fields, expected in LEVEL_2:
            want = _forwarded(fields, expected)
            seen = await _send(stack, "/api/users/1", fields)
            assert seen.all("tracestate") == ([want] if want else []), rule  # one field at most
            assert _trace_id(seen) == TRACE, rule  # a bad tracestate never ends the trace


async def test_the_next_hop_continues_what_the_gateway_sent() -> None:
    """The upstream service (the same runtime) extracts the gateway's tracestate and
    injects it unchanged into its own call: the members survive both directions twice."""
    fields = [" foo@=1 , bar@@baz= 2", "", "t@" + "v" * 15 + "=x,foo@=dup"]
    async with _stack() as stack:
        await _send(stack, "/api/users/nested", fields)
        sent = "foo@=1,bar@@baz= 2,t@" + "v" * 15 + "=x"
        assert stack.users.received[-1].all("tracestate") == [sent]
        assert stack.nested.received[-1].all("tracestate") == [sent]


async def test_an_unsampled_trace_keeps_its_tracestate() -> None:
    sampler = parentbased.ParentBasedSampler(const.ConstSampler(True))
    async with _stack(sampler=sampler) as stack:
        seen = await _send(stack, "/api/users/1", ["rojo=1,congo=2"], TP[:-2] + "00")
        assert (seen.header("traceparent") or "").endswith("-00")
        assert seen.all("tracestate") == ["rojo=1,congo=2"]


async def test_no_tracestate_without_a_valid_traceparent() -> None:
    async with _stack() as stack:
        for traceparent in (None, "00-" + "0" * 32 + "-1234567890123456-01", "ff" + TP[2:]):
            seen = await _send(stack, "/api/users/1", ["rojo=1"], traceparent)
            assert _trace_id(seen) != TRACE  # a new trace
            assert seen.all("tracestate") == []  # and never the stale tracestate


async def test_a_restarted_trace_from_another_format_carries_no_tracestate() -> None:
    """b3 comes after tracecontext in this extract order: with an invalid traceparent the
    trace continues from b3, and the tracestate that belonged to the bad traceparent goes."""
    async with _stack() as stack:
        headers = {"traceparent": "ff" + TP[2:], "tracestate": "rojo=1", "b3": f"{TRACE}-{SPAN}-1"}
        await stack.get("/api/users/1", headers=headers)
        seen = stack.users.received[-1]
        assert _trace_id(seen) == TRACE
        assert seen.all("tracestate") == []


async def test_over_512_characters_truncated_by_level_2_order_upstream() -> None:
    large = ["big=" + "x" * 125]  # 129 characters: larger than 128
    exact = ["edge=" + "x" * 123]  # 128 characters: not
    small = [f"s{i}=" + "y" * 57 for i in range(6)]  # 6 x 60
    async with _stack() as stack:
        # 128 + 129 + 360 + 7 commas = 624: the large entry goes first (489 left)
        seen = await _send(stack, "/api/users/1", [",".join(exact + large + small)])
        assert seen.all("tracestate") == [",".join(exact + small)]
        # 128 + 6 x 60 + 6 commas = 494 fits; one more small entry: 555, the end goes
        extra = ["z=" + "y" * 58]
        seen = await _send(stack, "/api/users/1", [",".join(exact + small + extra)])
        assert seen.all("tracestate") == [",".join(exact + small)]
        # one entry of 513 characters: nothing is sent, the trace goes on
        seen = await _send(stack, "/api/users/1", ["k" * 256 + "=" + "v" * 256])
        assert seen.all("tracestate") == []
        assert _trace_id(seen) == TRACE


async def test_tracestate_goes_on_when_another_format_gives_the_same_trace() -> None:
    """b3 is first in the extract order; a valid traceparent of the same trace still
    brings its tracestate, one of another trace does not."""
    async with _stack(extract=("b3", "tracecontext")) as stack:
        b3 = f"{TRACE}-{SPAN}-1"
        headers = {"b3": b3, "traceparent": TP, "tracestate": "rojo=1,congo@=2"}
        await stack.get("/api/users/1", headers=headers)
        seen = stack.users.received[-1]
        assert _trace_id(seen) == TRACE and seen.all("tracestate") == ["rojo=1,congo@=2"]
        other = TP.replace(TRACE[:4], "ffff")
        await stack.get("/api/users/1", headers={**headers, "traceparent": other})
        seen = stack.users.received[-1]
        assert _trace_id(seen) == TRACE and seen.all("tracestate") == []
