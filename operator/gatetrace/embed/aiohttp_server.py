"""aiohttp server side: ``web.Application(middlewares=[embed.aiohttp_middleware(kit)])``.

A SERVER span per request, named ``{METHOD} {route template}`` (the matched resource's
canonical path), current while the handler runs; the breadcrumb header on the answer of a
pending trace buffered here. Prepared (streamed) answers keep their headers as sent.
"""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import typedefs, web

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import kit as _kit
from gatetrace.embed import semconv

__all__ = ["middleware"]

_new_tuple = tuple.__new__
_ServerRequest = semconv.ServerRequest
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


_VERSIONS: dict[tuple[int, int], str] = {}


def _version(request: web.Request) -> str:
    version = request.version
    key = (version.major, version.minor)
    text = _VERSIONS.get(key)
    if text is None:
        text = _VERSIONS[key] = f"{version.major}.{version.minor}"
    return text


def _describe(request: web.Request) -> semconv.ServerRequest:
    """The request's attributes (read only when the trace is recorded or buffered)."""
    return _new_tuple(
        _ServerRequest,
        (
            request.method,
            request.path,
            request.scheme,
            _route(request),
            request.host,
            request.remote,
            request.headers.get("User-Agent"),
            _version(request),
            request.rel_url.raw_query_string,
        ),
    )


def middleware(kit: _kit.Kit) -> typedefs.Middleware:
    """The tracing middleware of ``kit`` for an aiohttp app."""
    open_server = kit.open_server
    finish_server = kit.finish_server

    @web.middleware
    async def tracing(request: web.Request, handler: Handler) -> web.StreamResponse:
        trace = open_server(
            request.headers, request.method, request.path, _route(request), _describe, request
        )
        if trace is None:
            return await handler(request)
        if not trace.recorded:  # unsampled: no status, no breadcrumbs to write
            try:
                return await handler(request)
            finally:
                finish_server(trace, 0)
        status = 0
        error: BaseException | None = None
        try:
            response = await handler(request)
            status = response.status
            crumbs = trace.breadcrumbs()
            if crumbs and not response.prepared:
                response.headers[_breadcrumbs.HEADER] = crumbs
            return response
        except web.HTTPException as exc:
            status = exc.status
            crumbs = trace.breadcrumbs()
            if crumbs:
                exc.headers[_breadcrumbs.HEADER] = crumbs
            raise
        except asyncio.CancelledError:
            raise  # the client went away: no status, not a server error
        except Exception as exc:
            status, error = 500, exc
            raise
        finally:
            finish_server(trace, status, error)

    return tracing
