"""``POST /v1/traces`` on the admin port: OTLP/HTTP spans from the services behind the
gateway, into its span store (so the query API and the trace page show them beside the
gateway's own).

::

    POST /v1/traces   Content-Type application/x-protobuf | application/json
                      Content-Encoding gzip (optional); Authorization: Bearer <admin token>
        200  ExportTraceServiceResponse (partial_success when spans were rejected)
        400  malformed body or invalid data (google.rpc.Status, nothing stored)
        401  no or wrong token          413  body or spans per request over the limits
        415  another Content-Type or Content-Encoding
        429  over the ingest rate, with Retry-After (nothing stored)

Error bodies are ``google.rpc.Status`` in the request's encoding (JSON when the encoding
is not one of the two). The bounds come from ``otlp`` in the gateway config
(:class:`~gatetrace.gateway.config.OtlpReceiverConfig`); what happens is counted on
``/metrics`` (``gatetrace_otlp_requests``, ``gatetrace_otlp_spans``, ``gatetrace_otlp_cut``).
Requests are decoded, built and stored a step of spans at a time
(:data:`~.otlp_data.DECODE_STEP`), yielding to the event loop
between steps: a large request never holds the proxy up for long.
"""

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Generator

from aiohttp import web

from gatetrace.gateway import config as _config
from gatetrace.gateway import (
    otlp_data,
    otlp_http,
    otlp_json,
    otlp_protobuf,
    otlp_spans,
    stepwise,
)
from gatetrace.gateway import store as _store
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime.reporting import protobuf_wire
from gatetrace.runtime.sampling import tokenbucket

__all__ = ["PATH", "Receiver", "add_routes", "status_errors"]

PATH = "/v1/traces"
_INVALID_ARGUMENT = 3
_RESOURCE_EXHAUSTED = 8
_UNIMPLEMENTED = 12
_UNAUTHENTICATED = 16
_STORE_STEP = 4 * otlp_data.DECODE_STEP
"""Spans stored per step (storing costs less than decoding)."""
_ENCODINGS = frozenset({otlp_http.PROTOBUF, otlp_http.JSON})


class _RefusalError(Exception):
    """An answer other than 200: HTTP status, gRPC code, message, outcome label."""

    def __init__(
        self, http: int, code: int, message: str, outcome: str, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.http = http
        self.code = code
        self.message = message
        self.outcome = outcome
        self.retry_after = retry_after


class Receiver:
    """The handler and its state: limits, rate bucket, span builder, counters."""

    def __init__(
        self,
        settings: _config.OtlpReceiverConfig,
        store: _store.SpanStore,
        registry: _metrics.Registry,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bucket = tokenbucket.TokenBucket(
            settings.max_spans_per_second,
            max(settings.max_spans_per_second, settings.max_spans_per_request),
        )
        self.builder = otlp_spans.SpanBuilder()
        self.requests = registry.counter(
            "gatetrace_otlp_requests", "OTLP/HTTP export requests by outcome", ["outcome"]
        )
        self.spans = registry.counter(
            "gatetrace_otlp_spans",
            "OTLP spans received, by result (stored, rejected, refused: trace full, "
            "throttled, too_many)",
            ["result"],
        )
        self.cut = registry.counter(
            "gatetrace_otlp_cut", "Parts of received spans dropped or cut by limits", ["what"]
        )

    async def handle(self, request: web.Request) -> web.Response:
        encoding = request.content_type
        answer_in = encoding if encoding in _ENCODINGS else otlp_http.JSON
        try:
            body = await self._body(request, encoding)
            built = await self._decode(body, encoding)
            self._throttle(built.accepted + built.rejected)
        except _RefusalError as refusal:
            self.requests.inc((refusal.outcome,))
            headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
            return web.Response(
                status=refusal.http,
                body=otlp_http.status(answer_in, refusal.code, refusal.message),
                content_type=answer_in,
                headers=headers,
            )
        refused = await self._store(built)
        rejected = built.rejected + refused
        message = _summary(built, refused)
        self.requests.inc(("partial" if rejected else "ok",))
        return web.Response(
            body=otlp_http.export_response(encoding, rejected, message if rejected else ""),
            content_type=encoding,
        )

    async def _body(self, request: web.Request, encoding: str) -> bytes:
        if encoding not in _ENCODINGS:
            raise _RefusalError(
                415,
                _UNIMPLEMENTED,
                f"Content-Type {encoding!r} is not supported: send {otlp_http.PROTOBUF} "
                f"or {otlp_http.JSON}",
                "unsupported",
            )
        coding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if coding not in ("identity", "gzip", ""):
            raise _RefusalError(
                415,
                _UNIMPLEMENTED,
                f"Content-Encoding {coding[:40]!r} is not supported: send gzip or none",
                "unsupported",
            )
        limit = self.settings.max_body_bytes
        try:
            return await otlp_http.read_body(request, limit)
        except otlp_http.BodyTooLargeError as e:
            raise _RefusalError(413, _RESOURCE_EXHAUSTED, str(e), "too_large") from None
        except otlp_http.BadBodyError as e:
            raise _RefusalError(400, _INVALID_ARGUMENT, str(e), "bad_request") from None

    async def _decode(self, body: bytes, encoding: str) -> otlp_spans.Built:
        try:
            return await stepwise.drive_async(self._build(body, encoding))
        except otlp_data.TooManySpansError as e:
            self.spans.inc(("too_many",), e.limit)
            raise _RefusalError(
                413, _RESOURCE_EXHAUSTED, f"{e}: at most {e.limit}", "too_many_spans"
            ) from None
        except (protobuf_wire.WireError, otlp_json.OtlpJsonError) as e:
            what = "protobuf" if encoding == otlp_http.PROTOBUF else "JSON"
            raise _RefusalError(
                400,
                _INVALID_ARGUMENT,
                f"not an OTLP ExportTraceServiceRequest ({what}): {e}",
                "bad_request",
            ) from None
        except otlp_spans.InvalidRequestError as e:
            raise _RefusalError(400, _INVALID_ARGUMENT, str(e), "bad_request") from None

    def _build(self, body: bytes, encoding: str) -> Generator[None, None, otlp_spans.Built]:
        """Decode and build, a step of spans at a time."""
        steps = otlp_data.Steps(self.settings.max_spans_per_request)
        if encoding == otlp_http.PROTOBUF:
            decoded = yield from otlp_protobuf.decode_steps(body, steps)
        else:
            decoded = yield from otlp_json.decode_steps(body, steps)
        return (yield from self.builder.build_steps(decoded))

    def _throttle(self, count: int) -> None:
        if count == 0 or self.bucket.try_acquire(count):
            return
        rate = self.settings.max_spans_per_second
        wait = max(1, math.ceil((count - self.bucket.available) / rate))
        self.spans.inc(("throttled",), count)
        raise _RefusalError(
            429,
            _RESOURCE_EXHAUSTED,
            f"over the ingest rate of {rate:g} spans/s: {count} spans refused, "
            f"retry after {wait} s",
            "throttled",
            retry_after=wait,
        )

    async def _store(self, built: otlp_spans.Built) -> int:
        """Store the built spans a step at a time; the number the store refused."""
        refused = 0
        for _, spans, shared in built.groups:
            for start in range(0, len(spans), _STORE_STEP):
                if start:
                    await asyncio.sleep(0)  # the proxy runs between steps
                chunk = spans[start : start + _STORE_STEP]
                refused += sum(self.store.add(chunk, shared_bytes=shared).values())
        self.spans.inc(("stored",), built.accepted - refused)
        if built.rejected:
            self.spans.inc(("rejected",), built.rejected)
        if refused:
            self.spans.inc(("refused",), refused)
        for what, amount in built.cut.items():
            self.cut.inc((what,), amount)
        return refused


def _summary(built: otlp_spans.Built, refused: int) -> str:
    """The ``partial_success.error_message``: why spans were dropped."""
    parts = []
    if built.rejected:
        shown = "; ".join(built.problems)
        more = built.rejected - len(built.problems)
        parts.append(
            f"{built.rejected} invalid span(s) rejected: {shown}"
            + (f" (and {more} more)" if more > 0 else "")
        )
    if refused:
        parts.append(
            f"{refused} span(s) dropped: their trace is at the store's bound of spans or bytes"
        )
    return ". ".join(parts)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin token's 401 on :data:`PATH` as a ``google.rpc.Status`` in the request's
    encoding, like every other refusal here (the spec: 4xx bodies are a Status). Sits
    outside :func:`~gatetrace.gateway.admin_auth.bearer_auth` in the admin app."""
    response = await handler(request)
    if request.path != PATH or response.status != 401 or not isinstance(response, web.Response):
        return response
    encoding = request.content_type if request.content_type in _ENCODINGS else otlp_http.JSON
    problem = json.loads(response.body or b"{}").get("error", "unauthenticated")  # type: ignore[arg-type]
    headers = {k: v for k, v in response.headers.items() if k == "WWW-Authenticate"}
    return web.Response(
        status=401,
        body=otlp_http.status(encoding, _UNAUTHENTICATED, problem),
        content_type=encoding,
        headers=headers,
    )


def add_routes(
    app: web.Application,
    settings: _config.OtlpReceiverConfig,
    store: _store.SpanStore,
    registry: _metrics.Registry,
) -> Receiver | None:
    """Route ``POST /v1/traces`` to a new :class:`Receiver` (unless disabled)."""
    if not settings.enabled:
        return None
    receiver = Receiver(settings, store, registry)
    app.router.add_post(PATH, receiver.handle)
    return receiver
