"""Baggage rules through a running gateway on 127.0.0.1: deny/allow match keys the way
every configured format reads them, OpenTracing's headers never slip through, and the
configured limits count what survives the rules."""

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import multidict
import pytest
from serverharness import running, settings_for, upstream

from gatetrace.gateway import server

pytestmark = pytest.mark.timeout(60)

EVERY_FORMAT = ["tracecontext", "baggage", "jaeger", "xtrace"]


@contextlib.asynccontextmanager
async def _gateway(baggage: dict[str, Any]) -> AsyncIterator[tuple[server.Gateway, Any]]:
    tracing = {
        "sampling": {"sampler": {"type": "const", "decision": True}},
        "propagation": {"extract": EVERY_FORMAT, "inject": EVERY_FORMAT},
        "baggage": baggage,
        "reporters": [{"type": "memory"}],
    }
    async with upstream() as up, running(settings_for(up, tracing=tracing)) as gw:
        yield gw


async def _upstream_headers(
    gw: server.Gateway, http: aiohttp.ClientSession, headers: Mapping[str, str]
) -> dict[str, str]:
    async with http.get(gw.proxy_url + "/api/users/1", headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    return {k.lower(): v for k, v in body["headers"].items()}


async def _dropped(gw: server.Gateway, http: aiohttp.ClientSession) -> dict[str, float]:
    async with http.get(gw.admin_url + "/metrics") as response:
        text = await response.text()
    found = {}
    for line in text.splitlines():
        if line.startswith("gatetrace_baggage_dropped_total{"):
            key, _, value = line.rpartition(" ")
            found[key.split('"')[1]] = float(value)
    return found


def _secret_anywhere(headers: Mapping[str, str]) -> list[str]:
    return [
        f"{name}: {value}"
        for name, value in headers.items()
        if "secret-key" in name or "secret-key" in value.lower()
    ]


@pytest.mark.parametrize(
    "sent",
    [
        {"baggage": "Secret-Key=x,tenant=acme"},
        {"baggage": "SECRET-KEY=x,tenant=acme"},
        {"uberctx-Secret-Key": "x", "uberctx-tenant": "acme"},
        {"X-Baggage-Secret-Key": "x", "X-Baggage-tenant": "acme"},
    ],
    ids=["w3c mixed case", "w3c upper case", "jaeger", "xtrace"],
)
async def test_deny_matches_whatever_the_letter_case(sent: dict[str, str]) -> None:
    async with _gateway({"deny": ["secret-key"]}) as (gw, http):
        received = await _upstream_headers(gw, http, sent)
        assert _secret_anywhere(received) == []
        assert "tenant=acme" in received["baggage"]  # the rest still goes
        assert received["uberctx-tenant"] == "acme"
        assert (await _dropped(gw, http))["denied"] >= 1


async def test_allow_matches_as_the_header_formats_read_keys() -> None:
    async with _gateway({"allow": ["tenant-id"]}) as (gw, http):
        received = await _upstream_headers(gw, http, {"uberctx-Tenant-ID": "acme"})
        assert received["uberctx-tenant-id"] == "acme"
        # two spellings of one key downstream: the first is kept
        received = await _upstream_headers(gw, http, {"baggage": "Tenant-Id=a,tenant-id=b"})
        assert received["uberctx-tenant-id"] == "a"
        assert "b" not in received["baggage"].split("=")[-1]
        assert (await _dropped(gw, http))["duplicate"] == 1


async def test_opentracing_headers_are_never_forwarded() -> None:
    async with _gateway({"deny": ["secret-key"]}) as (gw, http):
        sent = {
            "ot-baggage-secret-key": "x",
            "OT-Baggage-Secret-Key": "y",
            "ot-tracer-traceid": "0000000000000001",
            "ot-tracer-spanid": "0000000000000002",
            "ot-tracer-sampled": "true",
        }
        received = await _upstream_headers(gw, http, sent)
        assert not [name for name in received if name.startswith("ot-")], received


async def test_limits_count_what_survives_the_rules() -> None:
    async with _gateway({"allow": ["tenant-id"], "maxEntries": 3}) as (gw, http):
        received = await _upstream_headers(gw, http, {"baggage": "a1=1,a2=2,a3=3,tenant-id=acme"})
        assert received["baggage"] == "tenant-id=acme"
        assert (await _dropped(gw, http))["not_allowed"] == 3

    async with _gateway({"allow": ["tenant-id"], "maxBytes": 20}) as (gw, http):
        big = ",".join([f"junk{i}=" + "j" * 30 for i in range(5)] + ["tenant-id=acme"])
        received = await _upstream_headers(gw, http, {"baggage": big})
        assert received["baggage"] == "tenant-id=acme"
        dropped = await _dropped(gw, http)
        assert dropped["not_allowed"] == 5 and "max_bytes" not in dropped

    async with _gateway({"maxEntries": 2}) as (gw, http):  # over the limit after the rules
        received = await _upstream_headers(gw, http, {"baggage": "a=1,b=2,c=3"})
        assert received["baggage"] == "a=1,b=2"
        assert (await _dropped(gw, http))["max_entries"] == 1


async def test_entries_past_the_parse_bound_are_counted_as_baggage_drops() -> None:
    # the propagators read at most 1024 entries (a fixed bound protecting the parser);
    # what they leave out is a baggage drop too, with its own reason
    entries = ["tenant-id=acme"] + [f"k{i}=1" for i in range(1030)]
    sent = multidict.CIMultiDict(("baggage", ",".join(entries[i : i + 400])) for i in (0, 400, 800))
    async with _gateway({"allow": ["tenant-id"]}) as (gw, http):
        received = await _upstream_headers(gw, http, sent)
        assert received["baggage"] == "tenant-id=acme"
        dropped = await _dropped(gw, http)
        assert dropped["parse_limit"] == 1031 - 1024
        assert dropped["not_allowed"] == 1023
