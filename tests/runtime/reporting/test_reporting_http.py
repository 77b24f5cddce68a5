"""The shared HTTP transport: status classification, Retry-After, real sockets."""

import email.utils

import pytest
from aiohttp import web
from reportertools import Collector, free_port

from gatetrace.runtime.reporting import export, http


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, export.ExportResult.SUCCESS),
        (202, export.ExportResult.SUCCESS),
        (204, export.ExportResult.SUCCESS),
        (408, export.ExportResult.RETRYABLE),
        (429, export.ExportResult.RETRYABLE),
        (502, export.ExportResult.RETRYABLE),
        (503, export.ExportResult.RETRYABLE),
        (504, export.ExportResult.RETRYABLE),
        (400, export.ExportResult.FAILURE),
        (401, export.ExportResult.FAILURE),
        (404, export.ExportResult.FAILURE),
        (413, export.ExportResult.FAILURE),
        (500, export.ExportResult.FAILURE),
    ],
)
def test_classify_status(status: int, result: export.ExportResult) -> None:
    outcome = http.classify_status(status)
    assert outcome.result is result
    assert outcome.reason == ("" if result is export.ExportResult.SUCCESS else f"http_{status}")


def test_retry_after_forms() -> None:
    assert http.parse_retry_after("7") == 7.0
    assert http.parse_retry_after(" 120 ") == 120.0
    assert http.parse_retry_after("99999999") == 3600.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert http.parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    assert http.parse_retry_after(email.utils.formatdate(0, usegmt=True), now=50) == 0.0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert http.parse_retry_after(bad) is None
    outcome = http.classify_status(429, "3")
    assert outcome.retry_after == 3.0


def test_retry_after_with_non_ascii_digits_is_ignored_not_raised() -> None:
    # aiohttp decodes header bytes as latin-1/surrogateescape: 0xB2 arrives as "²",
    # which str.isdigit() accepts and float() refuses.
    for bad in ("\xb2", "1\xb9", "\u0663"):
        assert http.parse_retry_after(bad) is None
    assert http.classify_status(503, "\xb2").retry_after is None


def test_constructor_checks_endpoint_and_headers() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        http.HttpTransport("ftp://x/", content_type="a/b")
    with pytest.raises(ValueError, match="endpoint"):
        http.HttpTransport("http:///nohost", content_type="a/b")
    with pytest.raises(ValueError, match="headers: invalid header 'Bad Name'"):
        http.HttpTransport("http://x/", content_type="a/b", headers={"Bad Name": "v"})
    with pytest.raises(ValueError, match="headers"):
        http.HttpTransport("http://x/", content_type="a/b", headers={"X": "a\r\nInjected: 1"})


async def test_post_reads_body_and_retry_after(collector: Collector) -> None:
    async def respond(request: web.Request, attempt: int) -> web.StreamResponse:
        if attempt == 1:
            return web.Response(status=503, headers={"Retry-After": "2"})
        return web.Response(status=200, body=b"reply")

    collector.respond = respond
    transport = http.HttpTransport(f"{collector.base}/x", content_type="application/octet-stream")
    try:
        first = await transport.post(b"payload", timeout=2)
        second = await transport.post(b"payload", timeout=2)
    finally:
        await transport.close()
    assert first.status == 503
    assert first.outcome.result is export.ExportResult.RETRYABLE
    assert first.outcome.retry_after == 2.0
    assert second.status == 200
    assert second.body == b"reply"
    assert collector.received[0].body == b"payload"
    assert collector.received[0].headers["Content-Type"] == "application/octet-stream"


async def test_large_body_is_gzipped_off_loop(collector: Collector) -> None:
    transport = http.HttpTransport(f"{collector.base}/x", content_type="text/plain", gzip=True)
    body = b"0123456789abcdef" * 10_000
    try:
        response = await transport.post(body, timeout=2)
    finally:
        await transport.close()
    assert response.outcome.result is export.ExportResult.SUCCESS
    assert collector.received[0].body == body
    assert collector.received[0].wire_size < len(body) // 10


async def test_refused_and_hanging_are_retryable(collector: Collector) -> None:
    refused = http.HttpTransport(f"http://127.0.0.1:{free_port()}/", content_type="a/b")
    try:
        outcome = (await refused.post(b"x", timeout=1)).outcome
    finally:
        await refused.close()
    assert (outcome.result, outcome.reason) == (export.ExportResult.RETRYABLE, "connection_refused")

    async def hang(request: web.Request, attempt: int) -> web.StreamResponse:
        await collector.hang.wait()
        return web.Response()

    collector.respond = hang
    slow = http.HttpTransport(f"{collector.base}/", content_type="a/b")
    try:
        response = await slow.post(b"x", timeout=0.2)
    finally:
        await slow.close()
    assert response.status is None
    assert (response.outcome.result, response.outcome.reason) == (
        export.ExportResult.RETRYABLE,
        "timeout",
    )
