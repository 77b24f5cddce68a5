"""Bearer-token authentication for the gateway's admin port: :mod:`gatetrace.embed.auth`
(a kit's admin port has the same token rules), with the trace page's static files
(:data:`gatetrace.gateway.ui.PUBLIC_PATHS`: they hold no data) open as well."""

from collections.abc import Iterable

from aiohttp import typedefs

from gatetrace.embed import auth as _auth
from gatetrace.gateway import ui

__all__ = ["OPEN_PATHS", "bearer_auth"]

OPEN_PATHS = _auth.OPEN_PATHS | ui.PUBLIC_PATHS
"""Exact paths served without a token (probes, scraping, the trace page's files)."""


def bearer_auth(token: str, open_paths: Iterable[str] = OPEN_PATHS) -> typedefs.Middleware:
    """A middleware requiring ``Authorization: Bearer <token>`` outside ``open_paths``."""
    return _auth.bearer_auth(token, open_paths)
