"""gatetrace.embed: the kit that makes any Python service traced and operator-managed.

Imports :mod:`gatetrace.runtime`, :mod:`gatetrace.policy` and aiohttp only; never the gateway
or the operator (the gateway builds on it). ASGI (Starlette, FastAPI) and httpx support
needs neither package at import: the ASGI middleware is pure ASGI and the httpx transport
is typed structurally.
"""

from gatetrace.embed.admin_server import AdminServer, make_admin_app
from gatetrace.embed.aiohttp_client import trace_config as aiohttp_trace_config
from gatetrace.embed.aiohttp_server import middleware as aiohttp_middleware
from gatetrace.embed.asgi import AsgiMiddleware
from gatetrace.embed.breadcrumbs import HEADER as BREADCRUMB_HEADER
from gatetrace.embed.httpx_client import HttpxTransport
from gatetrace.embed.kit import Kit

__all__ = [
    "BREADCRUMB_HEADER",
    "AdminServer",
    "AsgiMiddleware",
    "HttpxTransport",
    "Kit",
    "aiohttp_middleware",
    "aiohttp_trace_config",
    "make_admin_app",
]
