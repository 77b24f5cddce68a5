"""Admin API: authentication, GET/PUT of the tracing config with every status code,
redaction, readiness, metrics, and atomic swaps."""

import asyncio
import json

import pytest
from adminharness import AUTH, TOKEN, running_admin

from gatetrace.gateway import admin_auth

pytestmark = pytest.mark.timeout(30)

SECRET = "Bearer otlp-very-secret-value"


def _config(rate: float = 0.5, **extra: object) -> dict[str, object]:
    return {"sampling": {"sampler": {"type": "probabilistic", "rate": rate}}, **extra}


# -- authentication ----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/v1/tracing"),
        ("PUT", "/admin/v1/tracing"),
        ("GET", "/api/services"),
        ("GET", "/api/traces?service=x"),
        ("GET", "/no/such/path"),
    ],
)
async def test_token_required(headers: dict[str, str], method: str, path: str) -> None:
    async with running_admin() as a:
        response = await a.client.request(method, path, headers=headers, data=b"{}")
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in await response.json()
        assert a.holder.current is None


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_and_metrics_need_no_token(path: str) -> None:
    async with running_admin() as a:
        response = await a.client.get(path)
        assert response.status in (200, 503)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        admin_auth.bearer_auth("")


# -- readiness and GET before any config ---------------------------------------


async def test_not_ready_until_a_config_is_loaded() -> None:
    async with running_admin() as a:
        assert (await a.client.get("/healthz")).status == 200
        response = await a.client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["ready"] is False
        missing = await a.get("/admin/v1/tracing")
        assert missing.status == 404
        assert (await a.put({"revision": 1, "config": _config()})).status == 200
        ready = await a.client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json()) == {"ready": True, "revision": 1}


# -- PUT and GET ---------------------------------------------------------------


async def test_put_then_get_round_trip_with_secrets_redacted() -> None:
    async with running_admin() as a:
        cfg = _config(
            reporters=[
                {"type": "memory"},
                {
                    "type": "otlpHttp",
                    "endpoint": "http://127.0.0.1:9/v1/traces",
                    "headers": {"authorization": SECRET},
                },
            ]
        )
        sources = [{"namespace": "shop", "name": "checkout", "generation": 3}]
        response = await a.put({"revision": 7, "config": cfg, "sources": sources})
        assert response.status == 200
        body = await response.json()
        assert body["revision"] == 7
        assert body["version"].startswith("sha256:")
        assert body["changed"] is True

        got = await a.get("/admin/v1/tracing")
        assert got.status == 200
        text = await got.text()
        assert "otlp-very-secret-value" not in text
        doc = json.loads(text)
        assert doc["revision"] == 7
        assert doc["version"] == body["version"]
        assert doc["appliedAt"].endswith("Z")
        assert doc["sources"] == sources
        assert doc["config"]["sampling"]["sampler"] == {"type": "probabilistic", "rate": 0.5}
        assert doc["config"]["reporters"][1]["headers"] == {"authorization": "<redacted>"}
        # the running config keeps the real value for the exporter
        running = a.holder.current
        assert running is not None
        assert running.config["reporters"][1]["headers"]["authorization"] == SECRET


async def test_put_builds_the_running_state() -> None:
    async with running_admin() as a:
        cfg = _config(
            headerTags=[{"header": "X-Request-Id", "tag": "http.request_id"}],
            baggage={"allow": ["tenant"], "tagKeys": ["tenant"]},
            namespaceOverrides={
                "shop": {"sampling": {"sampler": {"type": "const", "decision": True}}}
            },
        )
        cfg["sampling"] = {
            "sampler": {"type": "const", "decision": False},
            "prioritize": {"errors": True, "slowerThanMs": 100},
        }
        assert (await a.put({"revision": 1, "config": cfg})).status == 200
        active = a.holder.current
        assert active is not None
        assert active.header_tags == (("x-request-id", "http.request_id"),)
        assert active.baggage_tag_keys == frozenset({"tenant"})
        assert active.priority.errors is True
        assert active.priority.slower_than_ns == 100_000_000
        assert active.sampler_for("shop") is not None
        assert active.sampler_for("other") is None
        assert active.tracer.resource.service_name == "api-gateway"
        assert len(active.reporters) == 1  # the default memory reporter
        assert all(r.started for r in active.reporters)  # type: ignore[attr-defined]


async def test_same_revision_same_content_is_idempotent() -> None:
    async with running_admin() as a:
        first = await a.put({"revision": 3, "config": _config()})
        before = a.holder.current
        again = await a.put({"revision": 3, "config": _config()})
        assert again.status == 200
        body = await again.json()
        assert body["changed"] is False
        assert body["version"] == (await first.json())["version"]
        assert a.holder.current is before


async def test_same_revision_other_content_conflicts() -> None:
    async with running_admin() as a:
        await a.put({"revision": 3, "config": _config(0.5)})
        before = a.holder.current
        response = await a.put({"revision": 3, "config": _config(0.25)})
        assert response.status == 409
        body = await response.json()
        assert body["runningRevision"] == 3
        assert "other content" in body["error"]
        assert a.holder.current is before


async def test_older_revision_conflicts_and_changes_nothing() -> None:
    async with running_admin() as a:
        await a.put({"revision": 5, "config": _config()})
        before = a.holder.current
        response = await a.put({"revision": 4, "config": _config(0.1)})
        assert response.status == 409
        body = await response.json()
        assert body["runningRevision"] == 5
        assert "older" in body["error"]
        assert a.holder.current is before
        newer = await a.put({"revision": 6, "config": _config(0.1)})
        assert newer.status == 200


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
async def test_bad_json_is_400_naming_the_problem(body: bytes, needle: str) -> None:
    async with running_admin() as a:
        response = await a.client.put(
            "/admin/v1/tracing", data=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status == 400
        assert needle in (await response.json())["error"]
        assert a.holder.current is None


async def test_too_large_is_413() -> None:
    async with running_admin(max_body_bytes=2048) as a:
        cfg = _config(tags={f"k{i}": "v" * 100 for i in range(40)})
        response = await a.put({"revision": 1, "config": cfg})
        assert response.status == 413
        assert "2048" in (await response.json())["error"]
        assert a.holder.current is None


async def test_too_large_without_content_length_is_413() -> None:
    async with running_admin(max_body_bytes=1024) as a:

        async def chunks():  # type: ignore[no-untyped-def]
            yield b'{"revision": 1, "config": {"tags": {"a": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}}}'

        response = await a.client.put("/admin/v1/tracing", data=chunks(), headers=AUTH)
        assert response.status == 413
        assert a.holder.current is None


@pytest.mark.parametrize(
    ("body", "loc", "needle"),
    [
        ({"revision": 1, "config": _config(rate=2.0)}, "config.sampling.sampler.rate", "1"),
        (
            {"revision": 1, "config": {"sampling": {"sampler": {"type": "nope"}}}},
            "config.sampling.sampler",
            "",
        ),
        ({"revision": 1, "config": {"bogus": 1}}, "config.bogus", ""),
        ({"revision": 1, "config": "text"}, "config", "object"),
        ({"config": _config()}, "revision", "required"),
        ({"revision": -1, "config": _config()}, "revision", "from 0 to 2^63-1"),
        ({"revision": "7", "config": _config()}, "revision", "integer"),
        ({"revision": True, "config": _config()}, "revision", "integer"),
        ({"revision": 1}, "config", "required"),
        ({"revision": 1, "config": _config(), "extra": 1}, "extra", "unknown"),
        ({"revision": 1, "config": _config(), "sources": "x"}, "sources", "list"),
        (
            {
                "revision": 1,
                "config": {"batching": {"maxQueueSize": 10, "maxBatchSize": 20}},
            },
            "config.batching",
            "maxBatchSize",
        ),
    ],
)
async def test_invalid_config_is_422_with_field_paths(
    body: dict[str, object], loc: str, needle: str
) -> None:
    async with running_admin() as a:
        response = await a.put(body)
        assert response.status == 422
        errors = (await response.json())["errors"]
        assert errors, "422 must list errors"
        assert all(set(e) == {"loc", "msg"} for e in errors)
        matching = [e for e in errors if e["loc"].startswith(loc)]
        assert matching, errors
        assert any(needle in e["msg"] for e in matching), errors
        assert a.holder.current is None


async def test_invalid_config_keeps_the_running_one() -> None:
    async with running_admin() as a:
        await a.put({"revision": 1, "config": _config()})
        before = a.holder.current
        response = await a.put({"revision": 2, "config": _config(rate=-1)})
        assert response.status == 422
        assert a.holder.current is before
        got = await (await a.get("/admin/v1/tracing")).json()
        assert got["revision"] == 1


# -- reporters across swaps ----------------------------------------------------


async def test_old_reporters_are_flushed_and_closed_after_the_swap() -> None:
    async with running_admin(drain_seconds=0.1) as a:
        cfg = _config(reporters=[{"type": "zipkin", "endpoint": "http://127.0.0.1:9/api/v2/spans"}])
        cfg["sampling"] = {"sampler": {"type": "const", "decision": True}}
        await a.put({"revision": 1, "config": cfg})
        first = a.made[0]
        old = a.holder.current
        assert old is not None
        span = old.tracer.start_span("in-flight", parent=None)
        await a.put({"revision": 2, "config": cfg})
        assert a.holder.current is not old
        # a request that started with the old config finishes after the swap
        span.finish()
        assert not first.closed
        for _ in range(100):
            if first.closed:
                break
            await asyncio.sleep(0.02)
        assert first.closed
        assert [s.name for s in first.spans] == ["in-flight"]
        assert not a.made[1].closed


async def test_rejected_config_starts_no_reporter() -> None:
    async with running_admin() as a:
        cfg = _config(
            rate=3.0, reporters=[{"type": "zipkin", "endpoint": "http://127.0.0.1:9/api/v2/spans"}]
        )
        await a.put({"revision": 1, "config": cfg})
        assert a.made == []


# -- metrics -----------------------------------------------------------------


async def test_metrics_show_revision_applies_and_requests() -> None:
    async with running_admin() as a:
        await a.put({"revision": 4, "config": _config()})
        await a.put({"revision": 3, "config": _config()})
        active = a.holder.current
        assert active is not None
        active.tracer.start_span("x", parent=None).finish()
        response = await a.client.get("/metrics")
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
        assert "gatetrace_config_revision 4" in text
        assert "gatetrace_config_loaded 1" in text
        assert "gatetrace_config_last_apply_timestamp_seconds" in text
        assert 'gatetrace_config_applies_total{source="admin",outcome="applied"} 1' in text
        assert (
            'gatetrace_config_applies_total{source="admin",outcome="StaleRevisionError"} 1' in text
        )
        assert 'gatetrace_admin_requests_total{route="/admin/v1/tracing",code="200"} 1' in text
        assert "gatetrace_spans_started_total" in text
        assert "# TYPE gatetrace_admin_request_duration_seconds histogram" in text


async def test_namespace_priority_settings_reach_the_running_state() -> None:
    async with running_admin() as a:
        cfg = _config(
            namespaceOverrides={
                "shop": {"sampling": {"prioritize": {"errors": True, "slowerThanMs": 20}}}
            }
        )
        assert (await a.put({"revision": 1, "config": cfg})).status == 200
        active = a.holder.current
        assert active is not None
        assert active.priority_for("shop").slower_than_ns == 20_000_000
        assert active.priority_for("shop").errors is True
        assert active.priority_for("other") is active.priority
        assert active.priority_for(None) is active.priority


async def test_422_never_echoes_a_secret_header_value() -> None:
    async with running_admin() as a:
        secret = "Bearer " + "s" * 5000
        cfg = _config(
            reporters=[
                {
                    "type": "otlpHttp",
                    "endpoint": "http://127.0.0.1:9/v1/traces",
                    "headers": {"authorization": secret},
                }
            ]
        )
        response = await a.put({"revision": 1, "config": cfg})
        assert response.status == 422
        text = await response.text()
        assert "sssss" not in text
        errors = json.loads(text)["errors"]
        assert errors[0]["loc"].startswith("config.reporters[0].headers")
        assert "redacted" in errors[0]["msg"]
