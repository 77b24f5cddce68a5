"""The admin and query APIs of a running gateway on 127.0.0.1 against hostile input:
never a 500, never a traceback in the log, never a credential in a response, never a
huge value echoed back."""

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yarl
from serverharness import AUTH, running, settings_for, upstream

from gatetrace.gateway import server
from gatetrace.policy import redaction

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def _gateway() -> AsyncIterator[tuple[server.Gateway, aiohttp.ClientSession]]:
    async with upstream() as up:
        tracing = {"reporters": [{"type": "memory"}]}
        async with running(
            settings_for(up, tracing=tracing), headers=AUTH, drain_seconds=0.1
        ) as gw:
            yield gw


async def _put(http: aiohttp.ClientSession, gw: server.Gateway, body: bytes) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    data = io.BytesIO(body)
    async with http.put(gw.admin_url + "/admin/v1/tracing", data=data, headers=headers) as r:
        return r.status, await r.text()


async def test_deep_json_bodies_get_400(caplog: pytest.LogCaptureFixture) -> None:
    async with _gateway() as (gw, http):
        for depth in (5000, 100):
            deep = b'{"revision": 1, "config": ' + b"[" * depth + b"]" * depth + b"}"
            status, text = await _put(http, gw, deep)
            assert status == 400, text
            assert "nests deeper than 64 levels" in text
    assert "Traceback" not in caplog.text


async def test_a_revision_beyond_int64_gets_422() -> None:
    async with _gateway() as (gw, http):
        for revision in (2**63, 2**64 + 5, 10**400):
            body = json.dumps({"revision": revision, "config": {}}).encode()
            status, text = await _put(http, gw, body)
            assert status == 422, text
            assert "int64" in text
        status, _ = await _put(http, gw, json.dumps({"revision": 2**63 - 1, "config": {}}).encode())
        assert status == 200


async def test_a_huge_value_is_echoed_truncated() -> None:
    async with _gateway() as (gw, http):
        huge = "x" * 10_000_000
        body = json.dumps({"revision": 1, "config": {"sampling": {"sampler": huge}}}).encode()
        status, text = await _put(http, gw, body)
        assert status in (413, 422), status
        assert len(text) < 5_000


async def test_an_authorization_that_is_not_utf8_gets_401(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _gateway() as (gw, _):
        assert gw.admin_address is not None
        reader, writer = await asyncio.open_connection(*gw.admin_address)
        writer.write(
            b"GET /admin/v1/tracing HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \xff\xfe\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/traces?service=s&minDuration=" + "9" * 400 + "s", "minDuration"),
        ("/api/traces?service=s&maxDuration=" + "9" * 400 + "ms", "maxDuration"),
        ("/api/traces?service=s&lookback=" + "9" * 400 + "h", "lookback"),
        ("/api/stats?window=" + "9" * 400 + "s", "window"),
        ("/api/dependencies?lookback=" + "9" * 400, "lookback"),
        ("/api/dependencies?endTs=" + "9" * 400, "endTs"),
        ("/api/traces?service=s&start=" + "9" * 400, "start"),
        ("/api/traces?service=s&end=" + "9" * 5000, "end"),
        ("/api/traces?service=s&limit=" + "9" * 400, "limit"),
        ("/api/traces?service=s&tags=" + "[" * 2500 + "]" * 2500, "tags"),
        ("/api/traces?service=s&tags=" + '{"a":' * 1300 + "1" + "}" * 1300, "tags"),
        ('/api/traces?service=s&tags={"a":{"b":1}}', "tags"),
        ("/api/traces?service=s&traceID=" + "z" * 400, "traceID"),
        ("/api/traces?service=s&tag=" + "x" * 400, "tag"),
    ],
)
async def test_query_parameters_get_400_naming_them(path: str, parameter: str) -> None:
    async with _gateway() as (gw, http):
        # sent as written (brackets unescaped) so 2,500 levels fit in a request line
        async with http.get(yarl.URL(gw.admin_url + path, encoded=True)) as response:
            text = await response.text()
        assert response.status == 400, (path[:80], text[:300])
        assert f"'{parameter}'" in text, text[:300]
        assert len(text) < 2_000


def test_endpoints_lose_their_credentials() -> None:
    url = (
        "https://user:pa55@otel.example:4318/v1/traces?api_key=k3y&tenant=shop&X-Amz-Signature=s1g"
    )
    shown = redaction.redact_url(url)
    assert "pa55" not in shown and "k3y" not in shown and "s1g" not in shown
    assert shown.startswith("https://<redacted>@otel.example:4318/v1/traces?")
    assert "tenant=shop" in shown


async def test_get_tracing_redacts_reporter_endpoints() -> None:
    async with _gateway() as (gw, http):
        endpoint = "http://bob:hunter2@127.0.0.1:9/api/v2/spans?token=t0k&region=eu"
        body = {"revision": 1, "config": {"reporters": [{"type": "zipkin", "endpoint": endpoint}]}}
        status, text = await _put(http, gw, json.dumps(body).encode())
        assert status == 200, text
        async with http.get(gw.admin_url + "/admin/v1/tracing") as response:
            shown = await response.text()
        assert "hunter2" not in shown and "t0k" not in shown
        assert "region=eu" in shown and "127.0.0.1:9/api/v2/spans" in shown
