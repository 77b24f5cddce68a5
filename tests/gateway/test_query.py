"""Query API: Jaeger-query JSON shapes (hex ids, µs times, references, processes),
search filters, services/operations, dependencies, stats and 400s naming the parameter."""

import asyncio
import json
import re
import time
from typing import Any

import pytest
from adminharness import running_admin
from gt_spans import make_span

from gatetrace.gateway import query_api
from gatetrace.runtime import span as span_mod
from gatetrace.runtime import spancontext

pytestmark = pytest.mark.timeout(30)

NOW_NS = time.time_ns() - 60_000_000_000
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _tree() -> list[span_mod.Span]:
    """gw SERVER -> gw CLIENT -> users SERVER (error) -> db SERVER, plus a FOLLOWS_FROM link."""
    root = make_span(
        service="api-gateway",
        name="GET /api/users",
        start_ns=NOW_NS,
        duration_ns=30_000_000,
        tags={"http.response.status_code": 500, "gatetrace.route": "users", "ratio": 0.5},
    )
    root.logs.append(span_mod.LogRecord(NOW_NS + 5_000, {"event": "retry", "attempt": 2}))
    client = make_span(
        service="api-gateway",
        name="GET",
        parent=root,
        start_ns=NOW_NS + 1_000_000,
        duration_ns=25_000_000,
        kind=span_mod.SpanKind.CLIENT,
    )
    users = make_span(
        service="users",
        name="GET /users",
        parent=client,
        start_ns=NOW_NS + 2_000_000,
        duration_ns=20_000_000,
        error=True,
    )
    db = make_span(
        service="db",
        name="SELECT",
        parent=users,
        start_ns=NOW_NS + 3_000_000,
        duration_ns=1_000_000,
    )
    link = span_mod.Reference(
        span_mod.ReferenceType.FOLLOWS_FROM, spancontext.SpanContext(root.trace_id, 0xABC)
    )
    db.references = (link,)
    return [root, client, users, db]


def _check_trace_shape(trace: dict[str, Any]) -> None:
    assert HEX32.match(trace["traceID"])
    assert set(trace) >= {"traceID", "spans", "processes", "warnings"}
    for span in trace["spans"]:
        assert set(span) >= {
            "traceID",
            "spanID",
            "operationName",
            "references",
            "startTime",
            "duration",
            "tags",
            "logs",
            "processID",
            "warnings",
        }
        assert span["traceID"] == trace["traceID"]
        assert HEX16.match(span["spanID"])
        assert isinstance(span["startTime"], int)
        assert isinstance(span["duration"], int)
        assert span["processID"] in trace["processes"]
        for ref in span["references"]:
            assert ref["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
            assert HEX32.match(ref["traceID"])
            assert HEX16.match(ref["spanID"])
        for tag in span["tags"]:
            assert tag["type"] in ("string", "bool", "int64", "float64")
    for process in trace["processes"].values():
        assert isinstance(process["serviceName"], str)
        assert isinstance(process["tags"], list)


def _envelope(body: dict[str, Any], *, traces: bool = False) -> list[Any]:
    assert set(body) == {"data", "total", "limit", "offset", "errors"}
    assert body["errors"] is None
    data: list[Any] = body["data"]
    # as Jaeger's query service: total 0 for trace answers, the count for lists
    assert body["total"] == (0 if traces else len(data))
    return data


async def test_trace_by_id_has_the_jaeger_shape() -> None:
    async with running_admin() as a:
        spans = _tree()
        a.store.add(spans)
        root, client, users, db = spans
        response = await a.get(f"/api/traces/{root.context.trace_id_hex}")
        assert response.status == 200
        data = _envelope(await response.json(), traces=True)
        assert len(data) == 1
        trace = data[0]
        _check_trace_shape(trace)
        by_id = {s["spanID"]: s for s in trace["spans"]}
        assert list(by_id) == [s.context.span_id_hex for s in spans]
        j_root = by_id[root.context.span_id_hex]
        assert j_root["references"] == []
        assert j_root["startTime"] == NOW_NS // 1000
        assert j_root["duration"] == 30_000
        tags = {t["key"]: t for t in j_root["tags"]}
        assert tags["http.response.status_code"] == {
            "key": "http.response.status_code",
            "type": "int64",
            "value": 500,
        }
        assert tags["ratio"]["type"] == "float64"
        assert tags["span.kind"]["value"] == "server"
        assert j_root["logs"] == [
            {
                "timestamp": (NOW_NS + 5_000) // 1000,
                "fields": [
                    {"key": "event", "type": "string", "value": "retry"},
                    {"key": "attempt", "type": "int64", "value": 2},
                ],
            }
        ]
        j_client = by_id[client.context.span_id_hex]
        assert j_client["references"] == [
            {
                "refType": "CHILD_OF",
                "traceID": root.context.trace_id_hex,
                "spanID": root.context.span_id_hex,
            }
        ]
        j_users = by_id[users.context.span_id_hex]
        users_tags = {t["key"]: t["value"] for t in j_users["tags"]}
        assert users_tags["error"] is True
        assert users_tags["otel.status_code"] == "ERROR"
        j_db = by_id[db.context.span_id_hex]
        assert [r["refType"] for r in j_db["references"]] == ["CHILD_OF", "FOLLOWS_FROM"]
        services = {p["serviceName"] for p in trace["processes"].values()}
        assert services == {"api-gateway", "users", "db"}
        assert j_root["processID"] == j_client["processID"]
        process = trace["processes"][j_root["processID"]]
        assert {"key": "hostname", "type": "string", "value": "h1"} in process["tags"]


async def test_trace_by_id_accepts_short_or_upper_hex() -> None:
    async with running_admin() as a:
        s = make_span(trace_id=0xABC)
        a.store.add([s])
        for text in ("abc", "ABC", "0" * 29 + "abc"):
            response = await a.get(f"/api/traces/{text}")
            assert response.status == 200
            assert _envelope(await response.json(), traces=True)[0]["traceID"] == f"{0xABC:032x}"


async def test_unknown_and_bad_trace_ids() -> None:
    async with running_admin() as a:
        missing = await a.get("/api/traces/" + "1" * 32)
        assert missing.status == 404
        assert (await missing.json())["errors"][0]["code"] == 404
        bad = await a.get("/api/traces/not-hex")
        assert bad.status == 400
        assert "traceID" in (await bad.json())["errors"][0]["msg"]
        zero = await a.get("/api/traces/" + "0" * 32)
        assert zero.status == 400


async def test_services_and_operations() -> None:
    async with running_admin() as a:
        a.store.add(_tree())
        services = _envelope(await (await a.get("/api/services")).json())
        assert services == ["api-gateway", "db", "users"]
        ops = _envelope(await (await a.get("/api/services/api-gateway/operations")).json())
        assert ops == ["GET", "GET /api/users"]
        unknown = _envelope(await (await a.get("/api/services/nope/operations")).json())
        assert unknown == []
        typed = _envelope(await (await a.get("/api/operations?service=api-gateway")).json())
        assert typed == [
            {"name": "GET", "spanKind": "client"},
            {"name": "GET /api/users", "spanKind": "server"},
        ]
        servers = await a.get("/api/operations?service=api-gateway&spanKind=server")
        assert _envelope(await servers.json()) == [{"name": "GET /api/users", "spanKind": "server"}]


async def _search(a: Any, query: str) -> list[dict[str, Any]]:
    response = await a.get("/api/traces?" + query)
    assert response.status == 200, await response.text()
    data = _envelope(await response.json(), traces=True)
    for trace in data:
        _check_trace_shape(trace)
    return data


async def test_search_filters() -> None:
    async with running_admin() as a:
        tree = _tree()
        fast = make_span(service="api-gateway", name="GET /health", start_ns=NOW_NS + 10**9)
        a.store.add([*tree, fast])
        tid = tree[0].context.trace_id_hex
        fid = fast.context.trace_id_hex

        def ids(data: list[dict[str, Any]]) -> list[str]:
            return [t["traceID"] for t in data]

        assert ids(await _search(a, "service=api-gateway")) == [fid, tid]
        assert ids(await _search(a, "service=api-gateway&operation=GET+/health")) == [fid]
        assert ids(await _search(a, "service=api-gateway&minDuration=10ms")) == [tid]
        assert ids(await _search(a, "service=api-gateway&maxDuration=2ms")) == [fid]
        assert ids(await _search(a, "service=db&minDuration=500us&maxDuration=1.5ms")) == [tid]
        tags = json.dumps({"http.response.status_code": "500"})
        assert ids(await _search(a, f"service=api-gateway&tags={tags}")) == [tid]
        assert ids(await _search(a, "service=users&tags=%7B%22error%22%3A%22true%22%7D")) == [tid]
        assert ids(await _search(a, "service=api-gateway&tag=gatetrace.route:users")) == [tid]
        assert ids(await _search(a, "service=api-gateway&limit=1")) == [fid]
        start_us = (NOW_NS + 500_000_000) // 1000
        assert ids(await _search(a, f"service=api-gateway&start={start_us}")) == [fid]
        assert ids(await _search(a, f"service=api-gateway&end={start_us}")) == [tid]
        assert ids(await _search(a, "service=api-gateway&lookback=1h")) == [fid, tid]
        assert ids(await _search(a, "service=api-gateway&lookback=1s")) == []
        assert ids(await _search(a, f"traceID={tid}&traceID={fid}")) == [tid, fid]
        assert ids(await _search(a, "service=nope")) == []


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("", "service"),
        ("service=a&limit=x", "limit"),
        ("service=a&limit=-1", "limit"),
        ("service=a&minDuration=fast", "minDuration"),
        ("service=a&maxDuration=10", "maxDuration"),
        ("service=a&minDuration=2s&maxDuration=1s", "minDuration"),
        ("service=a&start=yesterday", "start"),
        ("service=a&end=1.5", "end"),
        ("service=a&start=20&end=10", "start"),
        ("service=a&lookback=forever", "lookback"),
        ("service=a&tags=notjson", "tags"),
        ("service=a&tags=[1]", "tags"),
        ("service=a&tag=novalue", "tag"),
        ("traceID=xyz", "traceID"),
    ],
)
async def test_bad_search_parameters_are_400_naming_them(query: str, param: str) -> None:
    async with running_admin() as a:
        response = await a.get("/api/traces?" + query)
        assert response.status == 400
        body = await response.json()
        assert body["data"] is None
        assert f"'{param}'" in body["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/dependencies?endTs=abc", "endTs"),
        ("/api/dependencies?lookback=0", "lookback"),
        ("/api/operations", "service"),
        ("/api/operations?service=a&spanKind=weird", "spanKind"),
        ("/api/stats?window=soon", "window"),
        ("/api/stats?window=0s", "window"),
    ],
)
async def test_other_bad_parameters_are_400(path: str, param: str) -> None:
    async with running_admin() as a:
        response = await a.get(path)
        assert response.status == 400
        assert f"'{param}'" in (await response.json())["errors"][0]["msg"]


async def test_dependencies() -> None:
    async with running_admin() as a:
        a.store.add(_tree())
        end_ms = (NOW_NS + 10**9) // 1_000_000
        response = await a.get(f"/api/dependencies?endTs={end_ms}&lookback=60000")
        data = _envelope(await response.json())
        assert data == [  # the gateway's server -> client span counts too, as in Jaeger
            {"parent": "api-gateway", "child": "api-gateway", "callCount": 1},
            {"parent": "api-gateway", "child": "users", "callCount": 1},
            {"parent": "users", "child": "db", "callCount": 1},
        ]
        before = await a.get(f"/api/dependencies?endTs={NOW_NS // 1_000_000 - 1000}&lookback=10")
        assert _envelope(await before.json()) == []
        default = _envelope(await (await a.get("/api/dependencies")).json())
        assert len(default) == 3


async def test_stats() -> None:
    async with running_admin() as a:
        now = time.time_ns()
        spans = [
            make_span(name="op", start_ns=now - 10**9, duration_ns=(i + 1) * 1_000_000)
            for i in range(10)
        ]
        spans[9].status = span_mod.Status(span_mod.StatusCode.ERROR)
        a.store.add(spans)
        response = await a.get("/api/stats?service=gw&operation=op&window=1m")
        body = await response.json()
        assert body["service"] == "gw"
        assert body["operation"] == "op"
        assert (body["count"], body["errors"]) == (10, 1)
        assert (body["p50"], body["p90"], body["p99"], body["max"]) == (5.0, 9.0, 10.0, 10.0)
        assert body["windowSeconds"] == 60
        other = await (await a.get("/api/stats?service=none")).json()
        assert other["count"] == 0


async def test_spans_reach_the_query_api_through_the_memory_reporter() -> None:
    async with running_admin() as a:
        cfg = {
            "sampling": {"sampler": {"type": "const", "decision": True}},
            "reporters": [{"type": "memory", "maxSpans": 50}],
            "batching": {"flushIntervalMs": 20},
        }
        assert (await a.put({"revision": 1, "config": cfg})).status == 200
        assert a.store.max_spans == 50
        active = a.holder.current
        assert active is not None
        root = active.tracer.start_span("GET /x", kind=span_mod.SpanKind.SERVER, parent=None)
        active.tracer.start_span("child", parent=root).finish()
        root.finish()
        for _ in range(100):
            if len(a.store) == 2:
                break
            await asyncio.sleep(0.02)
        data = await _search(a, "service=api-gateway")
        assert len(data) == 1
        assert data[0]["traceID"] == root.context.trace_id_hex
        assert len(data[0]["spans"]) == 2


def test_duration_parser() -> None:
    parse = query_api.parse_duration_ns
    assert parse("1h30m") == 5_400_000_000_000
    assert parse("1.5s") == 1_500_000_000
    assert parse("250ms") == 250_000_000
    assert parse("100us") == parse("100µs") == 100_000
    assert parse("7ns") == 7
    for bad in ("", "10", "1x", "s", "1s2"):
        with pytest.raises(ValueError, match="duration"):
            parse(bad)
