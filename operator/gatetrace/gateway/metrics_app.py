"""The metrics port: ``/metrics`` for a scraper, away from the admin port.

::

    GET /metrics   Prometheus text format 0.0.4 (every registry of the gateway)
    GET /healthz   always 200 while the process serves
    GET /readyz    200 once a tracing config is running, else 503

No token, nothing else: a NetworkPolicy can let Prometheus reach this port
without letting it reach the admin API (``metrics.listen`` in the gateway
config, ``gateway.metrics`` in the chart).
"""

from collections.abc import Sequence

from aiohttp import web

from gatetrace.embed import admin
from gatetrace.gateway import state as _state
from gatetrace.runtime import metrics as _metrics

__all__ = ["make_metrics_app"]


def make_metrics_app(
    holder: _state.TracingHolder, registries: Sequence[_metrics.Registry]
) -> web.Application:
    """The metrics app rendering ``registries`` (the admin app's, so both ports agree), with
    the admin API's own handlers (:mod:`gatetrace.embed.admin`)."""
    app = web.Application()
    app[admin.HOLDER] = holder
    app[admin.REGISTRIES] = list(registries)
    app.router.add_get("/metrics", admin.metrics)
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    return app
