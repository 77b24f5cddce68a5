"""ASGI server side (Starlette, FastAPI, any ASGI 3 app): ``app = embed.AsgiMiddleware(app, kit)``
or, with Starlette/FastAPI, ``app.add_middleware(embed.AsgiMiddleware, kit=kit)``.

Pure ASGI, no framework imported: a SERVER span per ``http`` request, current while the
app runs (the app's tasks inherit it through contextvars), renamed ``{METHOD} {route}``
when the framework left the matched route in ``scope["route"]`` (Starlette does); the
breadcrumb header added to ``http.response.start`` of a pending trace buffered here.
Lifespan and websocket scopes pass through untouched.
"""

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import kit as _kit
from gatetrace.embed import semconv

__all__ = ["AsgiHeaders", "AsgiMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
_HEADER = _breadcrumbs.HEADER.encode("latin-1")


class AsgiHeaders:
    """A :class:`~gatetrace.runtime.propagation.base.Getter` over ASGI's header list
    (``[(name, value)]`` bytes, names lowercase)."""

    __slots__ = ()

    def get(self, carrier: Sequence[tuple[bytes, bytes]], key: str) -> Sequence[str]:
        wanted = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in carrier if k == wanted]

    def keys(self, carrier: Sequence[tuple[bytes, bytes]]) -> Iterable[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = AsgiHeaders()


def _query(scope: Mapping[str, Any]) -> str:
    """The ASGI ``query_string`` (bytes, percent-encoded) as text."""
    raw = scope.get("query_string") or b""
    return raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else str(raw)


def _first(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _describe(scope: Scope) -> semconv.ServerRequest:
    """The request's attributes (read only when the trace is recorded or buffered)."""
    headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()
    client = scope.get("client")
    return semconv.ServerRequest(
        scope.get("method", "GET"),
        scope.get("path", "/"),
        scope.get("scheme", "http"),
        None,
        _first(headers, b"host"),
        client[0] if client else None,
        _first(headers, b"user-agent"),
        scope.get("http_version"),
        _query(scope),
    )


class AsgiMiddleware:
    """Traces an ASGI app's HTTP requests with ``kit``."""

    def __init__(self, app: App, kit: _kit.Kit) -> None:
        self.app = app
        self.kit = kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        kit = self.kit
        method = scope.get("method", "GET")
        trace = kit.open_server(
            scope.get("headers") or (),
            method,
            scope.get("path", "/"),
            None,
            _describe,
            scope,
            _GETTER,
        )
        if trace is None:
            await self.app(scope, receive, send)
            return
        if not trace.recorded:  # unsampled: no status, no breadcrumbs to write
            try:
                await self.app(scope, receive, send)
            finally:
                kit.finish_server(trace, 0)
            return
        status = 0

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
                crumbs = trace.breadcrumbs()
                if crumbs:
                    message = dict(message)
                    message["headers"] = [
                        *(h for h in message.get("headers", ()) if h[0].lower() != _HEADER),
                        (_HEADER, crumbs.encode("latin-1")),
                    ]
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, traced_send)
        except Exception as exc:
            error = exc
            status = status or 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if isinstance(route, str):
                trace.found_route(method, route)
            kit.finish_server(trace, status, error)
