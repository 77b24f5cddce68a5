"""aiohttp client side: ``aiohttp.ClientSession(trace_configs=[embed.aiohttp_trace_config(kit)])``.

aiohttp's own request tracing (:class:`aiohttp.TraceConfig`): a CLIENT span per request,
child of the current span, the configured formats injected into the request headers at
``on_request_start``; the status and the downstream's breadcrumbs at ``on_request_end``;
the failure at ``on_request_exception``. Without a current span nothing is done; an
unsampled trace's call is only its context, injected at the start (nothing at the end).
"""

import types

import aiohttp

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import kit as _kit

__all__ = ["trace_config"]

_HEADER = _breadcrumbs.HEADER


def trace_config(kit: _kit.Kit) -> aiohttp.TraceConfig:
    """A TraceConfig tracing a session's requests with ``kit``."""
    start_client = kit.start_client
    finish_client = kit.finish_client

    async def on_start(
        session: aiohttp.ClientSession,
        context: types.SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        # always set: a getattr default on a missing attribute raises inside, not cheap
        context.gatetrace_call = start_client(params.method, params.url, params.headers)

    async def on_end(
        session: aiohttp.ClientSession,
        context: types.SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        call = getattr(context, "gatetrace_call", None)
        if call is not None:
            context.gatetrace_call = None
            response = params.response
            crumbs = response.headers.getall(_HEADER, ()) if call.retro else ()
            finish_client(call, response.status, crumbs)

    async def on_exception(
        session: aiohttp.ClientSession,
        context: types.SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        call = getattr(context, "gatetrace_call", None)
        if call is not None:
            context.gatetrace_call = None
            finish_client(call, 0, error=params.exception)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    return config
