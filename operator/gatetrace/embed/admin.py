"""The admin endpoints a gateway and a service using the kit share (separate port).

::

    GET  /admin/v1/tracing   -> {revision, version, appliedAt, config (redacted), sources}
    PUT  /admin/v1/tracing   {revision, config} -> 200 {revision, version}
                             400 bad JSON, 409 stale revision, 413 too large, 422 invalid
    GET  /healthz            always 200 while the process serves
    GET  /readyz             200 once a tracing config is running, else 503
    GET  /metrics            Prometheus text format (no token, like the probes)

:func:`add_tracing_routes` puts them on an app whose state holds :data:`HOLDER`,
:data:`APPLIER`, :data:`REGISTRIES`; the bearer token (:mod:`.auth`) guards all but the
probes and ``/metrics``. The protocol itself is :mod:`gatetrace.policy.admin_protocol`.
"""

import datetime
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import typedefs, web

from gatetrace.embed import state as _state
from gatetrace.embed import tracing_apply
from gatetrace.policy import admin_protocol as _protocol
from gatetrace.policy import errors as _errors
from gatetrace.policy import messages as _messages
from gatetrace.policy import redaction
from gatetrace.runtime import metrics as _metrics

__all__ = [
    "APPLIER",
    "COLLECT",
    "DEFAULT_MAX_BODY_BYTES",
    "HOLDER",
    "MAX_BODY",
    "NOT_READY",
    "REGISTRIES",
    "add_tracing_routes",
    "request_metrics",
]

DEFAULT_MAX_BODY_BYTES = 1 << 20
"""Largest ``PUT /admin/v1/tracing`` body accepted (413 beyond)."""

HOLDER: web.AppKey[_state.TracingHolder] = web.AppKey("gatetrace_holder", _state.TracingHolder)
APPLIER: web.AppKey[tracing_apply.Applier] = web.AppKey("gatetrace_applier", tracing_apply.Applier)
REGISTRIES: web.AppKey[list[_metrics.Registry]] = web.AppKey("gatetrace_registries", list)
MAX_BODY: web.AppKey[int] = web.AppKey("gatetrace_max_body", int)
COLLECT: web.AppKey[Callable[[], Awaitable[Sequence[_metrics.Registry]]]] = web.AppKey(
    "gatetrace_collect"
)
"""Optional: what ``/metrics`` renders, gathered per scrape (a gateway's workers merged);
without it, the registries under :data:`REGISTRIES`."""
NOT_READY: web.AppKey[Callable[[], str | None]] = web.AppKey("gatetrace_not_ready")
"""Optional: why the process is not ready although a config is loaded (a worker starting)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def get_tracing(request: web.Request) -> web.Response:
    active = request.app[HOLDER].current
    if active is None:
        return _error(404, "no tracing config is loaded yet")
    return web.json_response(
        _protocol.running_body(
            active.revision,
            active.version,
            _iso(active.applied_at),
            redaction.redact(active.config),
            active.sources,
        )
    )


async def _read_body(request: web.Request) -> bytes | web.Response:
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body of {request.content_length} bytes exceeds the {limit}-byte limit")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body exceeds the {limit}-byte limit")


def _invalid(errors: Sequence[dict[str, str]]) -> web.Response:
    return web.json_response({"errors": list(errors)}, status=422)


async def put_tracing(request: web.Request) -> web.Response:
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        put = _protocol.parse_put(_messages.load_json(body))
    except _errors.ValidationFailed as e:
        return _invalid([err.to_dict() for err in e.errors])
    except TypeError as e:  # not a JSON object
        return _error(400, str(e))
    except ValueError as e:  # not JSON (or not UTF-8, or too deep)
        return _error(400, f"body: {e}")
    try:
        applied = await request.app[APPLIER].apply(
            put.config, revision=put.revision, source="admin", sources=put.sources
        )
    except tracing_apply.StaleRevisionError as e:
        return _error(409, str(e), runningRevision=e.running)
    except tracing_apply.InvalidConfigError as e:
        return _invalid([err.to_dict() for err in e.errors])
    except tracing_apply.ApplyError as e:  # e.g. a worker process did not answer
        return _error(503, str(e))
    return web.json_response(
        {"revision": applied.revision, "version": applied.version, "changed": applied.changed}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    active = request.app[HOLDER].current
    if active is None:
        return web.json_response(
            {"ready": False, "reason": "no tracing config loaded yet"}, status=503
        )
    not_ready = request.app.get(NOT_READY)
    reason = not_ready() if not_ready is not None else None
    if reason is not None:
        return web.json_response({"ready": False, "reason": reason}, status=503)
    return web.json_response({"ready": True, "revision": active.revision})


async def metrics(request: web.Request) -> web.Response:
    own: list[_metrics.Registry] = request.app[REGISTRIES]
    collect = request.app.get(COLLECT)
    registries = await collect() if collect is not None else own
    text = _metrics.render_prometheus(registries)
    return web.Response(body=text.encode(), headers={"Content-Type": _metrics.CONTENT_TYPE})


def request_metrics(registry: _metrics.Registry) -> typedefs.Middleware:
    requests = registry.counter(
        "gatetrace_admin_requests", "Admin API requests by route and status", ["route", "code"]
    )
    latency = registry.histogram(
        "gatetrace_admin_request_duration_seconds", "Admin API request latency", ["route"]
    )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            requests.inc((route, str(status)))
            latency.observe(time.perf_counter() - started, (route,))

    return middleware


def add_tracing_routes(
    app: web.Application,
    holder: _state.TracingHolder,
    applier: tracing_apply.Applier,
    registries: Sequence[_metrics.Registry],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """``/admin/v1/tracing`` (GET, PUT), ``/healthz``, ``/readyz`` and ``/metrics`` on ``app``."""
    app[HOLDER] = holder
    app[APPLIER] = applier
    app[REGISTRIES] = list(registries)
    app[MAX_BODY] = max_body_bytes
    app.router.add_get(_protocol.TRACING_PATH, get_tracing)
    app.router.add_put(_protocol.TRACING_PATH, put_tracing)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
