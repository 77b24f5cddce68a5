"""Bearer-token authentication for the admin port.

Every path but the probes and ``/metrics`` (and what the caller adds: the gateway's trace
page files hold no data) needs ``Authorization: Bearer <token>``; the token is compared in
constant time (``hmac.compare_digest``) so response timing tells nothing about how much of
a guess was right.
"""

import hmac
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import typedefs, web

__all__ = ["OPEN_PATHS", "bearer_auth"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Exact paths served without a token (probes, scraping)."""

_REALM = 'Bearer realm="gatetrace-admin"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refuse(problem: str) -> web.Response:
    return web.json_response({"error": problem}, status=401, headers={"WWW-Authenticate": _REALM})


def bearer_auth(token: str, open_paths: Iterable[str] = OPEN_PATHS) -> typedefs.Middleware:
    """A middleware requiring ``Authorization: Bearer <token>`` outside ``open_paths``."""
    if not token:
        raise ValueError("the admin token must not be empty")
    expected = token.encode()
    unguarded = frozenset(open_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in unguarded:
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None:
            return _refuse("missing Authorization header (expected: Bearer <token>)")
        if not header.isascii():  # a token is ASCII; bytes that are not cannot match
            return _refuse("Authorization header must be ASCII 'Bearer <token>'")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return _refuse("Authorization header must be 'Bearer <token>'")
        if not hmac.compare_digest(credentials.strip().encode(), expected):
            return _refuse("invalid admin token")
        return await handler(request)

    return middleware
