"""Serving an aiohttp app on 127.0.0.1 for a test: the one copy of the runner/site
boilerplate that the stand-in upstreams, collectors and admin APIs of the suite share."""

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

__all__ = ["serving", "start"]


async def start(
    app: web.Application,
    *,
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    **runner: Any,
) -> tuple[web.AppRunner, str]:
    """Start ``app`` on 127.0.0.1 (``port`` 0: a free one); its runner and base URL.

    With ``ssl_context`` it serves https. ``runner`` goes to
    :class:`aiohttp.web.AppRunner` (e.g. ``shutdown_timeout``); the caller ends it
    with ``await runner.cleanup()``.
    """
    app_runner = web.AppRunner(app, **runner)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    scheme = "http" if ssl_context is None else "https"
    return app_runner, f"{scheme}://127.0.0.1:{app_runner.addresses[0][1]}"


@contextlib.asynccontextmanager
async def serving(app: web.Application, **runner: Any) -> AsyncIterator[str]:
    """``app`` served on a free 127.0.0.1 port until the block ends; yields its base URL."""
    app_runner, url = await start(app, **runner)
    try:
        yield url
    finally:
        await app_runner.cleanup()
