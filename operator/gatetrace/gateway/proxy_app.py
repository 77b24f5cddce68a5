"""The proxy application factory: ``make_proxy_app(settings, holder, registry)``.

One catch-all route to the :class:`~gatetrace.gateway.proxy.Proxy` handler,
the tracing middleware in front of it, and the upstream connection pool
opened and closed with the app (``cleanup_ctx``). At process start
(:func:`tune_collector`, called by ``gatetrace gateway`` once it serves), the
objects alive then (modules, config, policy models: most of the heap) are
moved out of the garbage collector's reach with :func:`gc.freeze`, once per
process: they live as long as the process, and every full collection would
otherwise walk them again (measured: ~3 us per request untraced, ~7-12 us
traced, whose extra allocations trigger more collections). The young
generation's threshold is raised from 700 to :data:`GEN0_THRESHOLD` then:
in-flight requests and the spans queued for export (a batch of 512 spans is
a few thousand objects) grow the young generation in waves that reference
counting frees when the batch is sent, and at 700 every wave was walked by
young and middle collections though none of it was garbage (measured with
callgrind at 100% sampling: ~11 us per request). Real cyclic garbage is still
collected, in larger batches. Typed state under
:class:`aiohttp.web.AppKey` so the CLI, the demo and tests can reach the
pieces without string keys.
"""

import gc
from typing import Final

from aiohttp import web

from gatetrace.embed import keep as _keep
from gatetrace.gateway import clientip, config, connections, middleware, proxy, routes, state
from gatetrace.runtime import metrics

__all__ = [
    "GUARD",
    "HOLDER",
    "PROXY",
    "REGISTRY",
    "SETTINGS",
    "TRACING",
    "make_proxy_app",
    "tune_collector",
]

SETTINGS: Final = web.AppKey("gatetrace_gateway_settings", config.GatewayConfig)
HOLDER: Final = web.AppKey("gatetrace_tracing_holder", state.TracingHolder)
REGISTRY: Final = web.AppKey("gatetrace_metrics_registry", metrics.Registry)
PROXY: Final = web.AppKey("gatetrace_proxy", proxy.Proxy)
TRACING: Final = web.AppKey("gatetrace_tracing_middleware", middleware.TracingMiddleware)
GUARD: Final = web.AppKey("gatetrace_connection_guard", connections.ConnectionGuard)
"""The client connection limits; serve the app with a ``connections.GuardedSite``."""


GEN0_THRESHOLD: Final = 10_000
"""Allocations (net of frees) between two young-generation collections once serving."""

_frozen = False


def tune_collector() -> None:
    """At process start, once (``gatetrace gateway``, not the app factory: building an app
    in a test must not retune the collector of the whole test session): collect once,
    exempt everything alive now from future collections, and let the young generation
    grow to :data:`GEN0_THRESHOLD` before it is collected."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GEN0_THRESHOLD:  # 0: collection disabled by the embedder; leave it
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


def make_proxy_app(
    settings: config.GatewayConfig,
    holder: state.TracingHolder,
    registry: metrics.Registry,
    *,
    keeper: _keep.Keeper | None = None,
) -> web.Application:
    """Build the proxy app; the upstream pool opens when the app starts. ``keeper`` sends
    the keep requests of kept pending traces (retroactive collection; None: none)."""
    table = routes.RouteTable.from_config(settings.routes)
    resolver = clientip.ClientIpResolver(settings.trusted_proxies)
    tracing = middleware.TracingMiddleware(
        holder,
        table,
        resolver,
        trace_id_header=settings.trace_id_header,
        blocked_headers=settings.recorded_header_blocklist,
        registry=registry,
        keeper=keeper,
    )
    limits = settings.connections
    guard = connections.ConnectionGuard(
        head_timeout=limits.head_timeout_ms / 1000,
        idle_timeout=limits.idle_timeout_ms / 1000,
        max_connections=limits.max_connections or connections.default_max_connections(),
        registry=registry,
    )
    handler = proxy.Proxy(
        table,
        resolver,
        registry,
        connections=guard,
        latency_buckets=metrics.latency_buckets(settings.longest_request_seconds),
    )
    app = web.Application(middlewares=[tracing])
    app[GUARD] = guard
    app[SETTINGS] = settings
    app[HOLDER] = holder
    app[REGISTRY] = registry
    app[PROXY] = handler
    app[TRACING] = tracing
    app.router.add_route("*", "/{path:.*}", handler.handle)
    app.cleanup_ctx.append(handler.lifespan)
    return app
