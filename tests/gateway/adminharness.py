"""A real admin server on 127.0.0.1 for the admin and query API tests."""

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import test_utils

from gatetrace.gateway import admin, config, exporters, state, store, tracing_apply
from gatetrace.policy import reporters
from gatetrace.runtime import metrics
from gatetrace.runtime import span as span_mod
from gatetrace.runtime.reporting import export

TOKEN = "s3cr3t-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingExporter:
    """Keeps what it exported and whether it was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.spans: list[span_mod.Span] = []
        self.closed = False

    async def export(self, spans: Sequence[span_mod.Span], timeout: float) -> export.ExportOutcome:
        self.spans.extend(spans)
        return export.ExportOutcome.success()

    async def close(self) -> None:
        self.closed = True


@dataclass
class Admin:
    client: test_utils.TestClient[Any, Any]
    holder: state.TracingHolder
    store: store.SpanStore
    registry: metrics.Registry
    applier: tracing_apply.Applier
    made: list[RecordingExporter]

    async def put(
        self, body: Any, *, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        return await self.client.put("/admin/v1/tracing", json=body, headers=headers or AUTH)

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.client.get(path, headers=AUTH, **kw)


@contextlib.asynccontextmanager
async def running_admin(
    *,
    max_body_bytes: int = admin.DEFAULT_MAX_BODY_BYTES,
    drain_seconds: float = 0.05,
    recording: bool = True,
) -> AsyncIterator[Admin]:
    """An admin app with its own holder/store/registry; ``recording`` replaces every
    non-memory reporter by a :class:`RecordingExporter`."""
    holder = state.TracingHolder()
    span_store = store.SpanStore()
    registry = metrics.Registry()
    made: list[RecordingExporter] = []
    real = exporters.factory(span_store)

    def factory(reporter: reporters.Reporter) -> export.Exporter:
        if not recording or reporter.type == "memory":
            return real(reporter)
        exporter = RecordingExporter(reporter.type)
        made.append(exporter)
        return exporter

    applier = tracing_apply.Applier(
        holder,
        service="api-gateway",
        registry=registry,
        exporters=factory,
        drain_seconds=drain_seconds,
        close_timeout=2.0,
        on_applied=lambda _parts, cfg: exporters.configure_store(span_store, cfg),
    )
    app = admin.make_admin_app(
        config.GatewayConfig(),
        holder,
        span_store,
        registry,
        TOKEN,
        applier=applier,
        max_body_bytes=max_body_bytes,
    )
    server = test_utils.TestServer(app, host="127.0.0.1")
    client = test_utils.TestClient(server)
    await client.start_server()
    try:
        yield Admin(client, holder, span_store, registry, applier, made)
    finally:
        await applier.close(1.0)
        await client.close()
