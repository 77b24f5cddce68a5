"""httpx client side: ``httpx.AsyncClient(transport=embed.HttpxTransport(kit))``.

A transport wrapper (httpx's own extension point), typed structurally so the kit does not
need httpx: a CLIENT span per request around the inner transport (default
``httpx.AsyncHTTPTransport()``, imported only then), the configured formats injected into
the request headers, the status and the downstream's breadcrumbs read from the response
head. The span ends when the head arrives (the body streams on). An unsampled trace's
call is only its context, injected before the request.
"""

import types
from typing import Any, Protocol

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import kit as _kit

__all__ = ["HttpxTransport"]


class _Request(Protocol):
    method: str
    headers: Any
    url: Any


class _Response(Protocol):
    status_code: int
    headers: Any


class _Transport(Protocol):
    async def handle_async_request(self, request: Any) -> Any: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """An ``httpx.AsyncBaseTransport`` tracing every request through ``inner``."""

    def __init__(self, kit: _kit.Kit, inner: _Transport | None = None) -> None:
        if inner is None:
            import httpx

            inner = httpx.AsyncHTTPTransport()
        self.kit = kit
        self.inner: _Transport = inner

    async def handle_async_request(self, request: _Request) -> Any:
        call = self.kit.start_client(request.method, request.url, request.headers)
        if call is None:
            return await self.inner.handle_async_request(request)
        try:
            response: _Response = await self.inner.handle_async_request(request)
        except Exception as exc:
            self.kit.finish_client(call, 0, error=exc)
            raise
        crumbs = response.headers.get_list(_breadcrumbs.HEADER) if call.retro else ()
        self.kit.finish_client(call, response.status_code, crumbs)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> "HttpxTransport":
        enter = getattr(self.inner, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        leave = getattr(self.inner, "__aexit__", None)
        if leave is not None:
            await leave(exc_type, exc, traceback)
