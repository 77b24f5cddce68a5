"""The trace page: a small static web app served by the admin port under ``/ui/``.

::

    GET /ui          -> 308 to /ui/
    GET /ui/         the page (index.html)
    GET /ui/app.css  its style sheet
    GET /ui/app.js   its script (an ES module importing dom.js, session.js, trace.js,
                     graph.js from the same folder; no build step)
    GET /ui/mode.json  {"readOnly": bool}: the read-only query port (``queryApi.listen``)
                     answers true, and the page then needs no token and has no config view

The page itself holds no data and needs no token (:data:`PUBLIC_PATHS` is
part of :data:`gatetrace.gateway.admin_auth.OPEN_PATHS`); it asks for the
admin token in a login form, keeps it in ``sessionStorage`` and sends it as
``Authorization: Bearer`` to the query and admin APIs, which stay guarded.
The files ship as package data and are read once when the routes are added.
A strict Content-Security-Policy allows only these same-origin files: no
inline script, no external host, no framing.
"""

import importlib.resources
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

__all__ = [
    "ASSETS",
    "CONTENT_SECURITY_POLICY",
    "MODE_PATH",
    "PREFIX",
    "PUBLIC_PATHS",
    "add_ui_routes",
]

PREFIX = "/ui/"

ASSETS: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {
        "": ("index.html", "text/html"),
        "app.css": ("app.css", "text/css"),
        # ES modules: app.js (views, routing) imports the others
        "app.js": ("app.js", "text/javascript"),
        "dom.js": ("dom.js", "text/javascript"),
        "session.js": ("session.js", "text/javascript"),
        "trace.js": ("trace.js", "text/javascript"),
        "graph.js": ("graph.js", "text/javascript"),
    }
)
"""URL name under :data:`PREFIX` -> (file in the ``ui`` package folder, content type)."""

MODE_PATH = PREFIX + "mode.json"
"""Tells the page which port serves it (``{"readOnly": true}`` on the read-only query port)."""

PUBLIC_PATHS = frozenset({PREFIX.rstrip("/"), MODE_PATH, *(PREFIX + name for name in ASSETS)})
"""Exact paths served without a token (no prefix match: nothing else under /ui/ is open)."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the page's empty favicon: no request for /favicon.ico
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str

    async def serve(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.body, content_type=self.content_type, charset="utf-8", headers=_HEADERS
        )


def _read(file_name: str) -> bytes:
    return (importlib.resources.files("gatetrace.gateway") / "ui" / file_name).read_bytes()


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PREFIX)


def add_ui_routes(app: web.Application, *, read_only: bool = False) -> None:
    """Serve the trace page on ``app`` under :data:`PREFIX`; ``read_only``: the app is the
    read-only query app (no token, no admin routes), which :data:`MODE_PATH` tells the page."""
    app.router.add_get(PREFIX.rstrip("/"), _to_index)
    for name, (file_name, content_type) in ASSETS.items():
        asset = _Asset(_read(file_name), content_type)
        app.router.add_get(PREFIX + name, asset.serve)
    mode = _Asset(json.dumps({"readOnly": read_only}).encode(), "application/json")
    app.router.add_get(MODE_PATH, mode.serve)
