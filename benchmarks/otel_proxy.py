"""The OpenTelemetry peer of the gateway: an aiohttp reverse proxy, bare or instrumented.

Run by ``benchmarks.bench_otel_proxy`` with the peer venv's interpreter
(``benchmarks.otel_venv``), never imported by the project: it needs only aiohttp
and the OpenTelemetry packages of that venv.

``python otel_proxy.py UPSTREAM MODE SINK``: a plain aiohttp web app on an
ephemeral 127.0.0.1 port that forwards every GET to ``UPSTREAM`` (same path and
query, the request's end-to-end headers) with one shared aiohttp
``ClientSession`` and answers with the upstream's status, content type and
body. It prints ``READY <port>`` once it listens. ``MODE``:

* ``bare``: no OpenTelemetry at all (the peer's baseline);
* ``<rate>,zipkin`` or ``<rate>,otlp`` (rate 0-1): the SDK's ``TracerProvider``
  with ``ParentBased(TraceIdRatioBased(rate))``, the aiohttp server and client
  instrumentations (a SERVER span per request, a CLIENT span per upstream call,
  traceparent injected upstream), one ``BatchSpanProcessor`` and the Zipkin
  JSON v2 exporter (``SINK/api/v2/spans``) or the OTLP/HTTP protobuf exporter
  (``SINK/v1/traces``). Under callgrind the process runs ~50x slower, so the
  processor's queue holds every span of a run (100,000) and the exporter's and
  processor's timeouts are 600 s: every span traced is delivered.
"""

import asyncio
import sys
from collections.abc import AsyncIterator

from aiohttp import web

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
TIMEOUT_S = 600


def _instrument(rate: float, exporter_name: str, sink: str) -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: SpanExporter
    if exporter_name == "zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        exporter = ZipkinExporter(endpoint=f"{sink}/api/v2/spans", timeout=TIMEOUT_S)
    elif exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{sink}/v1/traces", timeout=TIMEOUT_S)
    else:
        raise SystemExit(f"unknown exporter {exporter_name!r}")
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(rate)),
        resource=Resource.create({"service.name": "bench-otel-proxy"}),
    )
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=100_000, export_timeout_millis=TIMEOUT_S * 1000)
    )
    trace.set_tracer_provider(provider)
    AioHttpServerInstrumentor().instrument()  # web.Application gets the tracing middleware
    AioHttpClientInstrumentor().instrument()  # ClientSession gets the tracing trace_config


def _app(upstream: str) -> web.Application:
    import aiohttp

    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[session_key] = aiohttp.ClientSession()
        yield
        await app[session_key].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with request.app[session_key].get(
            upstream + request.path_qs, headers=headers
        ) as answer:
            body = await answer.read()
            return web.Response(body=body, status=answer.status, content_type=answer.content_type)

    app = web.Application()  # looked up now: instrumented when _instrument() ran
    app.cleanup_ctx.append(session)
    app.router.add_get("/{tail:.*}", forward)
    return app


async def _serve(upstream: str, mode: str, sink: str) -> None:
    if mode != "bare":
        rate, exporter_name = mode.split(",")
        _instrument(float(rate), exporter_name, sink)
    runner = web.AppRunner(_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[attr-defined]
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(*sys.argv[1:4]))
