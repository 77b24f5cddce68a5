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

__all__ = ["middleware"]

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


def middleware(kit: _kit.Kit) -> typedefs.Middleware:
    """The tracing middleware of ``kit`` for an aiohttp app."""

    @web.middleware
    async def tracing(request: web.Request, handler: Handler) -> web.StreamResponse:
        trace = kit.start_server(
            request.headers,
            method=request.method,
            path=request.path,
            scheme=request.scheme,
            route=_route(request),
            host=request.host,
            peer=request.remote,
            user_agent=request.headers.get("User-Agent"),
            protocol_version=_version(request),
            query=request.rel_url.raw_query_string,
        )
        if trace is None:
            return await handler(request)
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
            kit.finish_server(trace, status, error)

    return tracing
