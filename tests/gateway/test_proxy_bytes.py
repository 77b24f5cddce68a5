"""Bytes on the wire through a running gateway on 127.0.0.1, with raw sockets on both
sides: nothing is changed silently (non-UTF-8 header values are refused, a response
without Content-Type stays without one) and malformed requests are logged in one
WARNING line without their header values, rate-limited."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import http_exceptions
from serverharness import TOKEN

from gatetrace.gateway import badrequests, config, server

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def _raw_upstream(response: bytes, heads: list[bytes]) -> AsyncIterator[str]:
    """An upstream answering every request with ``response`` exactly; records each head."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            writer.write(response)
            await writer.drain()
        finally:
            writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


@contextlib.asynccontextmanager
async def _gateway(upstream: str) -> AsyncIterator[tuple[str, int]]:
    doc = {
        "listen": "127.0.0.1:0",
        "admin": {"listen": "127.0.0.1:0"},
        "routes": [{"name": "raw", "prefix": "/raw", "upstream": upstream}],
    }
    gw = server.Gateway(config.parse_config(doc), token=TOKEN, drain_seconds=0.2)
    await gw.start()
    assert gw.proxy_address is not None
    try:
        yield gw.proxy_address
    finally:
        await gw.stop(2.0)


async def _exchange(address: tuple[str, int], request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def _head(answer: bytes) -> dict[bytes, bytes]:
    head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head)}


OK_NO_TYPE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"


async def test_a_response_without_content_type_is_relayed_without_one() -> None:
    heads: list[bytes] = []
    async with _raw_upstream(OK_NO_TYPE, heads) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(b"hello")
    assert b"content-type" not in _head(answer)


@pytest.mark.parametrize(
    "response",
    [
        OK_NO_TYPE,
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n',
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
)
async def test_no_header_is_added_to_a_relayed_response_but_date(response: bytes) -> None:
    async with _raw_upstream(response, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    sent = set(_head(response))
    added = set(_head(answer)) - sent
    # Date: RFC 9110 6.6.1 has a proxy add it; the rest is framing of this connection
    assert added <= {b"date", b"connection", b"transfer-encoding", b"content-length"}, answer


async def test_a_server_header_the_upstream_sent_is_kept_as_it_was() -> None:
    named = OK_NO_TYPE.replace(b"Content-Length", b"Server: upstream/1.0\r\nContent-Length")
    async with _raw_upstream(named, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert _head(answer)[b"server"] == b"upstream/1.0"


async def test_a_content_type_the_upstream_sent_is_kept_as_it_was() -> None:
    typed = OK_NO_TYPE.replace(
        b"Content-Length", b"Content-Type: text/x-odd; q=1\r\nContent-Length"
    )
    async with _raw_upstream(typed, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert _head(answer)[b"content-type"] == b"text/x-odd; q=1"


async def test_a_request_header_that_is_not_utf8_gets_400_naming_it() -> None:
    heads: list[bytes] = []
    async with _raw_upstream(OK_NO_TYPE, heads) as up, _gateway(up) as address:
        request = b"GET /raw/x HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\r\nConnection: close\r\n\r\n"
        answer = await _exchange(address, request)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"X-Name" in answer and b"not UTF-8" in answer
        assert heads == []  # nothing reached the upstream
        # valid UTF-8 beyond ASCII goes through byte for byte
        request = (
            b"GET /raw/x HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\nConnection: close\r\n\r\n"
        )
        answer = await _exchange(address, request)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert b"X-Name: caf\xc3\xa9\r\n" in heads[0]


async def test_an_upstream_header_that_is_not_utf8_gets_502_naming_it() -> None:
    bad = OK_NO_TYPE.replace(b"Content-Length", b"X-Odd: \xff\xfe\r\nContent-Length")
    async with _raw_upstream(bad, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 502 "), answer
    assert b"X-Odd" in answer


async def test_an_upstream_reason_phrase_that_is_not_utf8_gets_502_saying_so() -> None:
    bad = OK_NO_TYPE.replace(b"200 OK", b"200 Tr\xe8s bien")
    async with _raw_upstream(bad, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 502 "), answer  # not "200 Trs bien"
    assert b"reason phrase" in answer and b"not UTF-8" in answer


async def test_utf8_beyond_ascii_from_an_upstream_is_relayed_byte_for_byte() -> None:
    sent = OK_NO_TYPE.replace(b"200 OK", b"200 Tr\xc3\xa8s bien").replace(
        b"Content-Length", b"X-Name: caf\xc3\xa9\r\nContent-Length"
    )
    async with _raw_upstream(sent, []) as up, _gateway(up) as address:
        answer = await _exchange(
            address, b"GET /raw/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 200 Tr\xc3\xa8s bien\r\n"), answer
    assert b"\r\nX-Name: caf\xc3\xa9\r\n" in answer


async def test_malformed_requests_log_one_warning_line_without_header_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _raw_upstream(OK_NO_TYPE, []) as up, _gateway(up) as address:
        for _ in range(15):
            bad = (
                b"GET /raw/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cr3t-t0ken\r\n"
                b"X-Bad\x01Name: v\r\n\r\n"
            )
            answer = await _exchange(address, bad)
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer
    text = caplog.text
    assert "s3cr3t" not in text
    assert "Traceback" not in text
    malformed = [r for r in caplog.records if "malformed request" in r.getMessage()]
    warned = [r for r in malformed if r.levelno == logging.WARNING]
    assert len(warned) == 10  # the burst; the rest are counted, not logged
    assert all(r.levelno < logging.ERROR for r in caplog.records if r.name.startswith("aiohttp"))
    assert "from 127.0.0.1" in warned[0].getMessage()
    assert "\n" not in warned[0].getMessage()


MALFORMED = [
    # (request, what the log line says): the reason, never the data quoted after it
    (
        b"POST /raw/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cr3t\r\n"
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "BadHttpMessage: Transfer-Encoding can't be present with Content-Length",
    ),
    (
        b"GET /raw/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cr3t\x7f\r\n\r\n",
        "BadHttpMessage: Invalid header value char",
    ),
    (
        b"GET /raw/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cr3t"
        + b"x" * 9000
        + b"\r\n\r\n",
        "LineTooLong: Got more than 8190 bytes when reading",
    ),
    (
        b"GET mailto:s3cr3t HTTP/1.1\r\nHost: a\r\n\r\n",
        "InvalidURLError: Unexpected char in url schema",
    ),
    # a request target aiohttp refuses by quoting it whole: only that it was refused
    (b"CONNECT s3cr3t@:80 HTTP/1.1\r\nHost: a\r\n\r\n", "InvalidURLError: invalid request target"),
    (
        b"GET http://user:s3cr3t@/x HTTP/1.1\r\nHost: a\r\n\r\n",
        "InvalidURLError: invalid request target",
    ),
]


async def test_malformed_requests_are_logged_by_their_reason_without_request_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _raw_upstream(OK_NO_TYPE, []) as up, _gateway(up) as address:
        for request, _ in MALFORMED:
            answer = await _exchange(address, request)
            assert b" 400 " in answer.split(b"\r\n", 1)[0], answer
    assert "s3cr3t" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "gatetrace.gateway"]
    assert lines == [f"malformed request from 127.0.0.1: {says}" for _, says in MALFORMED]


@pytest.mark.parametrize(
    ("error", "says"),
    [
        # aiohttp's pure-Python parser quotes what it refused after the reason
        (http_exceptions.BadStatusLine("GET /x?token=s3cr3t HTTP/1.1"), "Bad status line"),
        (http_exceptions.BadHttpMethod("G@T /x?token=s3cr3t"), "Bad HTTP method in status line"),
        (http_exceptions.BadHttpMethod("s3cr3t"), "Bad HTTP method in status line"),
        (http_exceptions.InvalidHeader(b"Bearer s3cr3t"), "Invalid HTTP header"),
        (http_exceptions.LineTooLong(b"Bearer s3cr3t...", 8190), "Got more than 8190 bytes"),
        (http_exceptions.InvalidURLError("/x?token=s3cr3t"), "invalid request target"),
        # a quoted header name is no data: kept
        (
            http_exceptions.BadHttpMessage("Duplicate 'Content-Length' header found."),
            "Duplicate 'Content-Length' header found.",
        ),
        # nothing unprintable reaches the log line
        (http_exceptions.BadHttpMessage("odd\x1b[2J\rthing"), "odd\\x1b[2J\\rthing"),
        (http_exceptions.BadHttpMessage("x" * 500), "x" * 80 + "..."),
    ],
)
def test_a_parse_error_is_described_without_the_data_it_quotes(
    error: http_exceptions.HttpProcessingError, says: str
) -> None:
    described = badrequests.describe(error)
    assert described.split(": ", 1)[1].startswith(says), described
    assert "s3cr3t" not in described
    assert described.isprintable()


async def test_non_http_traffic_is_logged_by_the_gateway_logger_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with _raw_upstream(OK_NO_TYPE, []) as up, _gateway(up) as address:
        # TLS (or a scanner) on the plain port: aiohttp keeps it at DEBUG, and so do we
        answer = await _exchange(address, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert b" 400 " in answer.split(b"\r\n", 1)[0], answer
    lines = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert [(r.name, r.levelno) for r in lines] == [("gatetrace.gateway", logging.DEBUG)]
    assert lines[0].getMessage() == (
        "malformed request from 127.0.0.1: BadHttpMethod: Received HTTPS traffic on an HTTP port"
    )


def test_the_rate_limit_reports_what_it_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = badrequests.RequestErrorLog(burst=2, window=10.0, clock=lambda: now[0])
    error = http_exceptions.BadHttpMessage("Invalid header value char:\n b'Bearer x'")
    with caplog.at_level(logging.WARNING, logger="gatetrace.gateway"):
        for _ in range(5):
            log.exception("Error handling request from %s", "10.0.0.1", exc_info=error)
        now[0] = 11.0
        log.exception("Error handling request from %s", "10.0.0.1", exc_info=error)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "malformed request from 10.0.0.1: BadHttpMessage: Invalid header value char",
        "malformed request from 10.0.0.1: BadHttpMessage: Invalid header value char",
        "3 more malformed requests not logged in the last 10s",
        "malformed request from 10.0.0.1: BadHttpMessage: Invalid header value char",
    ]


async def test_what_the_rate_limit_suppressed_is_counted_when_the_window_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = badrequests.RequestErrorLog(burst=1, window=0.05)
    error = http_exceptions.BadHttpMessage("Invalid header value char")
    with caplog.at_level(logging.WARNING, logger="gatetrace.gateway"):
        for _ in range(4):
            log.exception("Error handling request from %s", "10.0.0.1", exc_info=error)
        # no further malformed request: the count still comes, once the window is over
        for _ in range(100):
            if len(caplog.records) > 1:
                break
            await asyncio.sleep(0.01)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "malformed request from 10.0.0.1: BadHttpMessage: Invalid header value char",
        "3 more malformed requests not logged in the last 0.05s",
    ]
