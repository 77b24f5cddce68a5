"""The admin app (separate port): tracing config, probes, metrics and the query API.

::

    GET  /admin/v1/tracing   -> {revision, version, appliedAt, config (redacted), sources}
    PUT  /admin/v1/tracing   {revision, config} -> 200 {revision, version}
                             400 bad JSON, 409 stale revision, 413 too large, 422 invalid
    GET  /healthz            always 200 while the process serves
    GET  /readyz             200 once a tracing config is running, else 503
    GET  /metrics            Prometheus text format (no token, like the probes)
    GET  /api/...            the Jaeger-compatible query API (:mod:`.query_api`)
    GET  /ui/                the trace page (:mod:`.ui`; its files need no token)
    POST /v1/traces          OTLP/HTTP spans into the store (:mod:`.otlp_receiver`)

Everything but the probes and ``/metrics`` needs the bearer token
(:mod:`.admin_auth`). Config changes go through :class:`~.tracing_apply.Applier`. The
tracing, probe and metrics endpoints are the ones every kit-managed service has too
(:mod:`gatetrace.embed.admin`).
"""

from collections.abc import Sequence

from aiohttp import web

from gatetrace.embed import admin as _shared
from gatetrace.gateway import admin_auth, exporters, otlp_receiver, query_api, tracing_apply, ui
from gatetrace.gateway import config as _config
from gatetrace.gateway import state as _state
from gatetrace.gateway import store as _store
from gatetrace.runtime import metrics as _metrics

__all__ = [
    "APPLIER",
    "DEFAULT_MAX_BODY_BYTES",
    "HOLDER",
    "REGISTRIES",
    "make_admin_app",
]

DEFAULT_MAX_BODY_BYTES = _shared.DEFAULT_MAX_BODY_BYTES
"""Largest ``PUT /admin/v1/tracing`` body accepted (413 beyond)."""
HOLDER = _shared.HOLDER
APPLIER = _shared.APPLIER
REGISTRIES = _shared.REGISTRIES


def make_admin_app(
    settings: _config.GatewayConfig,
    holder: _state.TracingHolder,
    store: _store.SpanStore,
    registry: _metrics.Registry,
    token: str,
    *,
    applier: tracing_apply.Applier | None = None,
    extra_registries: Sequence[_metrics.Registry] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> web.Application:
    """The admin app. ``applier`` defaults to one building reporters with
    :func:`gatetrace.gateway.exporters.factory` (the memory reporter writes ``store``)."""
    if applier is None:
        applier = tracing_apply.Applier(
            holder,
            service=settings.service,
            registry=registry,
            exporters=exporters.factory(store),
            on_applied=lambda _parts, cfg: exporters.configure_store(store, cfg),
        )
    app = web.Application(
        middlewares=[
            _shared.request_metrics(registry),
            otlp_receiver.status_errors,
            admin_auth.bearer_auth(token),
        ],
        client_max_size=max_body_bytes,
    )
    _shared.add_tracing_routes(
        app, holder, applier, [registry, *extra_registries], max_body_bytes=max_body_bytes
    )
    query_api.add_routes(app, store)
    otlp_receiver.add_routes(app, settings.otlp, store, registry)
    ui.add_ui_routes(app)
    return app
