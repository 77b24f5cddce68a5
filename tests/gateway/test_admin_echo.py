"""A 422 from ``PUT /admin/v1/tracing`` of a running admin server on 127.0.0.1 names the
field and echoes a 10 MB offending value truncated (the body limit raised so the value
reaches validation instead of the 413)."""

import io
import json
import logging
from typing import Any

import pytest
from adminharness import AUTH, running_admin

pytestmark = pytest.mark.timeout(60)

_HUGE = "x" * 10_000_000


def _reporter(**fields: Any) -> dict[str, Any]:
    return {"revision": 1, "config": {"reporters": [fields]}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"revision": 1, "config": {"sampling": {"sampler": _HUGE}}}, "sampler"),
        ({"revision": 1, "config": {"sampling": {"sampler": {"type": _HUGE}}}}, "type"),
        ({"revision": 1, "config": {"sampling": {"sampler": {"rate": _HUGE}}}}, "sampler"),
        (_reporter(type="zipkin", endpoint=_HUGE), "endpoint"),
        (_reporter(type=_HUGE), "type"),
        (_reporter(type="jaegerAgent", host="h", port=_HUGE), "port"),
        ({"revision": 1, "config": {"tags": {"k": [_HUGE]}}}, "tags"),
        ({"revision": 1, "config": {"propagation": {"extract": [_HUGE]}}}, "extract"),
        ({"revision": 1, "config": {_HUGE: 1}}, "config"),
        ({"revision": _HUGE, "config": {}}, "revision"),
        ({"revision": 1, "config": {}, _HUGE: 1}, "x" * 20),
    ],
    ids=[
        "sampler",
        "sampler-type",
        "sampler-rate",
        "endpoint",
        "reporter-type",
        "port",
        "tag-value",
        "propagation",
        "config-key",
        "revision",
        "body-key",
    ],
)
async def test_a_10mb_value_is_echoed_truncated_in_the_422(body: Any, field: str) -> None:
    async with running_admin(max_body_bytes=32 << 20) as adm:
        data = io.BytesIO(json.dumps(body).encode())  # streamed: 10 MB of raw bytes warns
        headers = {**AUTH, "Content-Type": "application/json"}
        response = await adm.client.put("/admin/v1/tracing", data=data, headers=headers)
        text = await response.text()
        assert response.status == 422, text[:500]
        assert len(text) < 5_000, text[:500]
        assert field in text, text[:500]
        assert adm.holder.current is None  # nothing applied


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://bob:hunter2@collector:999999/api/v2/spans",
        "ftp://bob:hunter2@collector/api/v2/spans",
        "http://bob:hunter2@/api/v2/spans?token=hunter2",
        "http://collector:99999/api/v2/spans?api_key=hunter2&region=eu",
    ],
)
async def test_a_rejected_endpoint_is_echoed_without_its_credentials(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_admin() as adm:
        response = await adm.put(_reporter(type="zipkin", endpoint=endpoint))
        text = await response.text()
        assert response.status == 422, text
        assert "config.reporters[0].endpoint" in text
        assert "hunter2" not in text, text
    assert "endpoint" in caplog.text  # the rejection is logged, without the credentials
    assert "hunter2" not in caplog.text
