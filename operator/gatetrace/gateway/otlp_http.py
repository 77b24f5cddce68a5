"""The OTLP/HTTP envelope: bounded request bodies and the answers' bodies.

* :func:`read_body` reads at most ``limit`` bytes (413 past it, before reading on when
  ``Content-Length`` says so). aiohttp's parser undoes ``Content-Encoding: gzip`` as the
  body is read, a bounded step at a time under the stream's flow control (aiohttp
  3.13.3 and later: the floor in pyproject), so the limit
  holds for the inflated body too: a gzip bomb costs the receiver ``limit`` bytes and
  the time to inflate them, then a 413.
* :func:`export_response` is an ``ExportTraceServiceResponse`` (``partial_success`` set
  only when spans were rejected), :func:`status` a ``google.rpc.Status``; each in the
  request's encoding, protobuf or JSON (the spec: the response has the request's
  ``Content-Type``).
"""

import json

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import ContentEncodingError

from gatetrace.runtime.reporting import protobuf_wire as pb

__all__ = [
    "JSON",
    "PROTOBUF",
    "BadBodyError",
    "BodyTooLargeError",
    "export_response",
    "read_body",
    "status",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_CHUNK = 64 * 1024
_STATUS_CODE_KEY = pb.field_key(1, pb.VARINT)
_MESSAGE_KEY = pb.field_key(2, pb.LEN)
_PARTIAL_KEY = pb.field_key(1, pb.LEN)
_REJECTED_KEY = pb.field_key(1, pb.VARINT)


class BodyTooLargeError(ValueError):
    """The body, as sent or inflated, is over the limit (413)."""


class BadBodyError(ValueError):
    """The body cannot be read as declared (a broken gzip stream: 400)."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing to read more than ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLargeError(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                what = "inflated body" if request.headers.get("Content-Encoding") else "body"
                raise BodyTooLargeError(f"{what} exceeds the {limit}-byte limit")
            chunks.append(chunk)
    except (ContentEncodingError, web_protocol.RequestPayloadError):
        coding = request.headers.get("Content-Encoding", "")[:40]
        raise BadBodyError(f"the body is not valid {coding} (its Content-Encoding)") from None
    return b"".join(chunks)


def export_response(encoding: str, rejected: int = 0, message: str = "") -> bytes:
    """An ``ExportTraceServiceResponse``; ``partial_success`` when ``rejected`` or a
    ``message`` (a warning) is given."""
    if encoding == JSON:
        if not rejected and not message:
            return b"{}"
        partial = {"rejectedSpans": str(rejected), "errorMessage": message}
        return json.dumps({"partialSuccess": partial}).encode()
    if not rejected and not message:
        return b""
    body = (_REJECTED_KEY + pb.varint(rejected) if rejected else b"") + (
        pb.len_field(_MESSAGE_KEY, message.encode("utf-8", "replace")) if message else b""
    )
    return pb.len_field(_PARTIAL_KEY, body)


def status(encoding: str, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (``code``: a gRPC code, e.g. 3 ``INVALID_ARGUMENT``)."""
    if encoding == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    return (
        _STATUS_CODE_KEY
        + pb.varint(code)
        + pb.len_field(_MESSAGE_KEY, message.encode("utf-8", "replace"))
    )
