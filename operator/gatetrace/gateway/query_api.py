"""The Jaeger-query-compatible read API over the gateway's span store.

Routes (added to the admin app, behind its bearer token)::

    GET /api/traces/{traceID}
    GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&limit=
                   &start=&end=&lookback=&traceID=
    GET /api/services
    GET /api/services/{service}/operations
    GET /api/operations?service=&spanKind=
    GET /api/dependencies?endTs=&lookback=
    GET /api/stats?service=&operation=&window=

:func:`make_query_app` serves the same routes and the trace page on a port of their
own with no token (``queryApi.listen``), for Jaeger UI and Grafana, which send none;
it never serves an admin route.

Parameters follow the Jaeger query service: ``start``/``end`` in microseconds
since the epoch, ``endTs``/``lookback`` of dependencies in milliseconds,
durations as Go durations (``1.5s``, ``250ms``, ``100us``), ``tags`` a JSON
object (or repeated ``tag=key:value``). A bad parameter answers 400 with the
parameter's name in the message.
"""

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from gatetrace.gateway import jaeger_json, ui
from gatetrace.gateway import store as _store
from gatetrace.policy import messages as _messages
from gatetrace.runtime import ids
from gatetrace.runtime import span as _span

__all__ = ["STORE", "BadParameterError", "add_routes", "make_query_app", "parse_duration_ns"]

STORE: web.AppKey[_store.SpanStore] = web.AppKey("gatetrace_span_store", _store.SpanStore)

MAX_LIMIT = 10_000
MAX_TAGS = 64
"""Tags one search may ask for (``tags`` and ``tag`` together): each is compared with each
span scanned."""
DEFAULT_LIMIT = 20
DEFAULT_LOOKBACK_MS = 24 * 3600 * 1000

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


class BadParameterError(ValueError):
    """A query parameter could not be used; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"parameter {name!r}: {problem}")


MAX_DURATION_NS = 100 * 365 * 86_400_000_000_000
"""Durations (and lookbacks) beyond a century are refused: they only overflow."""
MAX_INT_PARAM = 2**63 - 1


def parse_duration_ns(text: str) -> int:
    """A Go-style duration (``1h30m``, ``1.5s``, ``250ms``) in nanoseconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    if len(text) > 64:
        raise ValueError(f"too long for a duration: {_messages.echo(text, 40)}")
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"not a duration like 1.5s, 250ms or 100us: {_messages.echo(text, 40)}")
    if not total <= MAX_DURATION_NS:  # also inf and nan
        raise ValueError(f"longer than 100 years: {_messages.echo(text, 40)}")
    return int(total)


def _param(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    return value


def _int_param(query: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    text = _param(query, name)
    if text is None:
        return None
    if len(text) > 20:  # int64 has at most 19 digits and a sign
        raise BadParameterError(name, f"not an int64: {_messages.echo(text, 40)}")
    try:
        value = int(text)
    except ValueError as e:
        raise BadParameterError(name, f"not an integer: {_messages.echo(text, 40)}") from e
    if value < minimum or value > MAX_INT_PARAM:
        raise BadParameterError(name, f"must be from {minimum} to 2^63-1, got {value}")
    return value


def _duration_param(query: Mapping[str, str], name: str) -> int | None:
    text = _param(query, name)
    if text is None:
        return None
    try:
        return parse_duration_ns(text)
    except ValueError as e:
        raise BadParameterError(name, str(e)) from e


def _tags_param(request: web.Request) -> tuple[tuple[str, str], ...]:
    tags: list[tuple[str, str]] = []
    text = _param(request.query, "tags")
    if text is not None:
        try:
            document = _messages.load_json(text, max_depth=2)
        except ValueError as e:
            raise BadParameterError("tags", f"not a JSON object of strings: {e}") from e
        if not isinstance(document, dict):
            raise BadParameterError(
                "tags", 'expected a JSON object like {"http.status_code":"500"}'
            )
        for key, value in document.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif not isinstance(value, str | int | float):
                raise BadParameterError(
                    "tags", f"value of {_messages.echo(key, 40)} must be a string or number"
                )
            tags.append((str(key), str(value)))
            if len(tags) > MAX_TAGS:
                raise BadParameterError("tags", f"at most {MAX_TAGS} tags in one search")
    for item in request.query.getall("tag", ()):
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise BadParameterError("tag", f"expected key:value, got {_messages.echo(item, 40)}")
        tags.append((key, value))
        if len(tags) > MAX_TAGS:
            raise BadParameterError("tag", f"at most {MAX_TAGS} tags (with 'tags') in one search")
    return tuple(tags)


def _trace_id(name: str, text: str) -> int:
    trace_id = ids.parse_trace_id(text)
    if trace_id is None:
        raise BadParameterError(
            name, f"not a hex trace id of 1-32 digits: {_messages.echo(text, 40)}"
        )
    return trace_id


def _bad(e: BadParameterError) -> web.Response:
    return web.json_response(jaeger_json.error_envelope(400, str(e)), status=400)


def _search_query(request: web.Request) -> _store.TraceQuery:
    query = request.query
    service = _param(query, "service")
    if service is None:
        raise BadParameterError("service", "is required")
    limit = _int_param(query, "limit")
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    limit = min(limit, MAX_LIMIT)
    start_us = _int_param(query, "start")
    end_us = _int_param(query, "end")
    lookback = _param(query, "lookback")
    start_ns = start_us * 1000 if start_us is not None else None
    end_ns = end_us * 1000 if end_us is not None else None
    if lookback is not None and lookback != "custom" and start_ns is None:
        lookback_ns = _duration_param(query, "lookback") or 0
        start_ns = (end_ns if end_ns is not None else time.time_ns()) - lookback_ns
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        raise BadParameterError("start", "is after 'end'")
    min_duration = _duration_param(query, "minDuration")
    max_duration = _duration_param(query, "maxDuration")
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise BadParameterError("minDuration", "is above 'maxDuration'")
    return _store.TraceQuery(
        service=service,
        operation=_param(query, "operation"),
        tags=_tags_param(request),
        min_duration_ns=min_duration,
        max_duration_ns=max_duration,
        start_ns=start_ns,
        end_ns=end_ns,
        limit=limit,
    )


async def get_trace(request: web.Request) -> web.StreamResponse:
    try:
        trace_id = _trace_id("traceID", request.match_info["trace_id"])
    except BadParameterError as e:
        return _bad(e)
    span_store = request.app[STORE]
    await span_store.evict_async()
    spans = span_store.trace(trace_id)
    if not spans:
        return web.json_response(
            jaeger_json.error_envelope(404, f"trace {ids.format_trace_id(trace_id)} not found"),
            status=404,
        )
    return await _streamed(request, [spans])


async def find_traces(request: web.Request) -> web.StreamResponse:
    span_store = request.app[STORE]
    try:
        wanted = [_trace_id("traceID", t) for t in request.query.getall("traceID", ())]
        if wanted:
            # each trace once: a repeated id would send the same spans again
            traces = await span_store.traces_async(list(dict.fromkeys(wanted))[:MAX_LIMIT])
        else:
            traces = await span_store.find_traces_async(_search_query(request))
    except BadParameterError as e:
        return _bad(e)
    # Jaeger's query service reports total 0 for trace answers; we do the same
    return await _streamed(request, traces)


async def services(request: web.Request) -> web.Response:
    await request.app[STORE].evict_async()
    return web.json_response(jaeger_json.envelope(request.app[STORE].services()))


async def service_operations(request: web.Request) -> web.Response:
    await request.app[STORE].evict_async()
    names = sorted(
        {name for name, _ in request.app[STORE].operations(request.match_info["service"])}
    )
    return web.json_response(jaeger_json.envelope(names))


_KINDS = {kind.value: kind for kind in _span.SpanKind}


async def operations(request: web.Request) -> web.Response:
    try:
        service = _param(request.query, "service")
        if service is None:
            raise BadParameterError("service", "is required")
        kind_text = _param(request.query, "spanKind")
        kind = None
        if kind_text is not None:
            kind = _KINDS.get(kind_text.lower())
            if kind is None:
                raise BadParameterError(
                    "spanKind",
                    f"expected one of {sorted(_KINDS)}, got {_messages.echo(kind_text, 40)}",
                )
    except BadParameterError as e:
        return _bad(e)
    await request.app[STORE].evict_async()
    data = [
        {"name": name, "spanKind": span_kind.value}
        for name, span_kind in request.app[STORE].operations(service, kind)
    ]
    return web.json_response(jaeger_json.envelope(data))


async def dependencies(request: web.Request) -> web.Response:
    try:
        end_ms = _int_param(request.query, "endTs")
        lookback_ms = _int_param(request.query, "lookback", minimum=1)
    except BadParameterError as e:
        return _bad(e)
    if end_ms is None:
        end_ms = time.time_ns() // 1_000_000
    if lookback_ms is None:
        lookback_ms = DEFAULT_LOOKBACK_MS
    deps = await request.app[STORE].dependencies_async(end_ms * 1_000_000, lookback_ms * 1_000_000)
    data: list[dict[str, Any]] = [
        {"parent": d.parent, "child": d.child, "callCount": d.call_count} for d in deps
    ]
    return web.json_response(jaeger_json.envelope(data))


async def stats(request: web.Request) -> web.Response:
    try:
        window_ns = _duration_param(request.query, "window")
    except BadParameterError as e:
        return _bad(e)
    if window_ns is not None and window_ns <= 0:
        return _bad(BadParameterError("window", "must be positive"))
    service = _param(request.query, "service")
    operation = _param(request.query, "operation")
    result = await request.app[STORE].stats_async(
        service=service,
        operation=operation,
        window_seconds=window_ns / 1e9 if window_ns is not None else 300.0,
    )
    body: dict[str, Any] = {"service": service, "operation": operation, **result.to_json()}
    return web.json_response(body)


async def _streamed(
    request: web.Request, traces: Sequence[Sequence[_span.Span]]
) -> web.StreamResponse:
    """Send a trace answer in pieces (:func:`jaeger_json.encode_traces`), yielding to the
    event loop (the proxy's) between pieces: a 100 MB answer never holds it up for long,
    and is never held whole in memory a second time."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for piece in jaeger_json.encode_traces(traces):
        await response.write(piece.encode("ascii"))
        await asyncio.sleep(0)  # write() returns at once while the socket takes data
    await response.write_eof()
    return response


def add_routes(app: web.Application, span_store: _store.SpanStore) -> None:
    """Install the query routes on ``app`` (the admin app) reading ``span_store``."""
    app[STORE] = span_store
    app.router.add_get("/api/traces/{trace_id}", get_trace)
    app.router.add_get("/api/traces", find_traces)
    app.router.add_get("/api/services", services)
    app.router.add_get("/api/services/{service}/operations", service_operations)
    app.router.add_get("/api/operations", operations)
    app.router.add_get("/api/dependencies", dependencies)
    app.router.add_get("/api/stats", stats)


def make_query_app(span_store: _store.SpanStore) -> web.Application:
    """The read-only query app: the query routes over ``span_store`` and the trace page,
    no token, no admin route (whoever reaches its port reads every kept trace)."""
    app = web.Application()
    add_routes(app, span_store)
    ui.add_ui_routes(app, read_only=True)
    return app
