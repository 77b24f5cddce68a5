"""Reporter encoding cost and enqueue throughput: gatetrace against OpenTelemetry, same run.

Rows (median of several rounds; ours and the peer's rounds alternate, the side
going first swapping each round, so both see the same load; the spread,
min-max over the rounds, is in each row's name):

* ``otlp encode``: µs per span to turn a batch of 512 typical gateway spans
  (12 tags, one log, server kind) into request bytes — ours
  (:class:`~gatetrace.runtime.reporting.otlp_encoding.OtlpEncoder`) against
  opentelemetry-exporter-otlp-proto-common's ``encode_spans`` on SDK
  ``ReadableSpan`` objects plus ``SerializeToString``. Goal <= 0.5x.
* ``zipkin encode``: the same spans as Zipkin v2 JSON bytes, against
  opentelemetry-exporter-zipkin-json's ``JsonV2Encoder.serialize`` (+ UTF-8
  encode, as the bytes are what goes on the wire). Goal <= 0.5x.
* ``enqueue, backend down``: µs per ``on_end`` while the zipkin reporter's
  backend refuses connections and the engine retries, against the same with a
  healthy local backend. Goal <= 1.5x (a dead backend must not slow the
  request path).

Every round encodes fresh spans (new ids, request ids and URLs), so the
encoders' caches see the churn a gateway sees. Run:
``.venv/bin/python benchmarks/bench_reporting.py``.
"""

import asyncio
import gc
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.common import trace_encoder
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from opentelemetry.sdk import resources as otel_resources
from opentelemetry.sdk import trace as otel_sdk_trace
from opentelemetry.sdk.util import instrumentation

from gatetrace.runtime import baggage, ids, span, spancontext, tracer
from gatetrace.runtime.reporting import engine, otlp_encoding, zipkin

Row = dict[str, Any]
"""The row contract of ``benchmarks/common.py`` (plain dicts are accepted there)."""
BATCH = 512
RESOURCE_TAGS = (("hostname", "gw-7c9"), ("ip", "10.1.2.3"), ("gatetrace.version", "0.1.0"))
START_NS = 1_700_000_000_000_000_000


def _tags(i: int, salt: int) -> dict[str, span.TagValue]:
    return {
        "http.method": "GET",
        "http.url": f"http://gw.example/api/users/{salt}-{i}",
        "http.route": "/api/users/{id}",
        "http.status_code": 200,
        "http.request_id": f"req-{salt:04x}-{i:08x}",
        "client.address": "10.0.0.7",
        "component": "gatetrace",
        "upstream.name": "users",
        "upstream.latency_ms": 12.5 + i % 7,
        "retry": False,
        "sampler.type": "probabilistic",
        "sampler.param": 0.1,
    }


def ours_spans(salt: int) -> list[span.Span]:
    resource = span.Resource("api-gateway", RESOURCE_TAGS)
    limits, counter = span.SpanLimits(), tracer.TracerMetrics()
    out = []
    for i in range(BATCH):
        start = START_NS + i * 1000
        s = span.Span(
            spancontext.SpanContext(
                ids.new_trace_id(),
                ids.new_span_id(),
                True,
                False,
                True,
                False,
                (),
                baggage.EMPTY_BAGGAGE,
            ),
            "GET /api/users/{id}",
            kind=span.SpanKind.SERVER,
            parent_id=ids.new_span_id(),
            resource=resource,
            references=(),
            sampled=True,
            recording=True,
            start_ns=start,
            limits=limits,
            metrics=counter,
            end_hook=None,
        )
        s.tags.update(_tags(i, salt))
        s.logs.append(span.LogRecord(start + 500, {"event": "upstream.response"}))
        s.end_ns = start + 20_000_000
        out.append(s)
    return out


def otel_spans(salt: int) -> list[otel_sdk_trace.ReadableSpan]:
    resource = otel_resources.Resource({"service.name": "api-gateway", **dict(RESOURCE_TAGS)})
    scope = instrumentation.InstrumentationScope("gatetrace", "0.1.0")
    flags = otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)
    out = []
    for i in range(BATCH):
        start = START_NS + i * 1000
        context = otel_trace.SpanContext(ids.new_trace_id(), ids.new_span_id(), False, flags)
        parent = otel_trace.SpanContext(context.trace_id, ids.new_span_id(), True, flags)
        out.append(
            otel_sdk_trace.ReadableSpan(
                "GET /api/users/{id}",
                context=context,
                parent=parent,
                resource=resource,
                attributes=_tags(i, salt),
                events=[otel_sdk_trace.Event("upstream.response", {}, start + 500)],
                kind=otel_trace.SpanKind.SERVER,
                start_time=start,
                end_time=start + 20_000_000,
                instrumentation_scope=scope,
            )
        )
    return out


@dataclass(frozen=True)
class Figure:
    """One side's rounds: median and spread."""

    rounds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def spread(self) -> str:
        return f"{min(self.rounds):.2f}-{max(self.rounds):.2f}"


def _per_span_us(encode: Callable[[Any], object], batch: list[Any]) -> float:
    gc.collect()  # each side starts from a collected heap, not the last round's garbage
    started = time.perf_counter()
    encode(batch)
    return (time.perf_counter() - started) / BATCH * 1e6


def _alternate(
    ours: Callable[[Any], object],
    ours_batches: list[Any],
    peer: Callable[[Any], object],
    peer_batches: list[Any],
) -> tuple[Figure, Figure]:
    """µs per span of both encoders, one fresh batch each per round, rounds alternating
    (even rounds ours first, odd rounds the peer's first)."""
    ours(ours_batches[0])  # warm up both (imports, caches)
    peer(peer_batches[0])
    mine: list[float] = []
    theirs: list[float] = []
    for r, (a, b) in enumerate(zip(ours_batches[1:], peer_batches[1:], strict=True)):
        if r % 2:
            theirs.append(_per_span_us(peer, b))
            mine.append(_per_span_us(ours, a))
        else:
            mine.append(_per_span_us(ours, a))
            theirs.append(_per_span_us(peer, b))
    return Figure(tuple(mine)), Figure(tuple(theirs))


def measure_encoding(rounds: int = 9) -> dict[str, tuple[Figure, Figure]]:
    """{format: (ours, OpenTelemetry's) µs per span}, rounds interleaved."""
    ours_batches = [ours_spans(salt) for salt in range(rounds + 1)]
    otel_batches = [otel_spans(salt) for salt in range(rounds + 1)]
    otlp_ours = otlp_encoding.OtlpEncoder()
    zipkin_ours = zipkin.ZipkinEncoder()
    zipkin_otel = JsonV2Encoder()
    endpoint = NodeEndpoint("10.1.2.3")
    endpoint.service_name = "api-gateway"
    return {
        "otlp": _alternate(
            otlp_ours.encode,
            ours_batches,
            lambda b: trace_encoder.encode_spans(b).SerializeToString(),
            otel_batches,
        ),
        "zipkin": _alternate(
            zipkin_ours.encode,
            ours_batches,
            lambda b: zipkin_otel.serialize(b, endpoint).encode(),
            otel_batches,
        ),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _enqueue_cost(endpoint: str, seconds: float) -> tuple[float, float, float]:
    """(median µs per on_end, spans exported, spans dropped) over ``seconds`` of steady load."""
    settings = engine.BatchSettings(
        max_queue_size=2048,
        max_batch_size=512,
        flush_interval_ms=100,
        initial_backoff_ms=20,
        max_backoff_ms=200,
    )
    processor = engine.BatchingProcessor(zipkin.ZipkinExporter(endpoint), settings)
    processor.start()
    batches = [ours_spans(salt) for salt in range(4)]
    costs: list[float] = []
    stop = time.monotonic() + seconds
    round_ = 0
    while time.monotonic() < stop:
        chunk = batches[round_ % len(batches)][:200]
        round_ += 1
        started = time.perf_counter()
        for s in chunk:
            processor.on_end(s)
        costs.append((time.perf_counter() - started) / len(chunk))
        await asyncio.sleep(0.002)  # the gateway's loop also serves requests
    m = processor.metrics
    exported = m.exported.value(m.labels)
    dropped = m.dropped.total()
    await processor.shutdown(0.5)
    return statistics.median(costs) * 1e6, exported, dropped


async def _received_ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202)


async def measure_enqueue(
    rounds: int = 5, seconds: float = 0.5
) -> tuple[tuple[Figure, float, float], tuple[Figure, float, float]]:
    """((down µs per on_end, exported, dropped), (up ...)): ``rounds`` alternating rounds
    of ``seconds`` each (backend down first on even rounds, up first on odd ones);
    exported and dropped are totals over the rounds."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v2/spans", _received_ok)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    endpoints = {
        "down": f"http://127.0.0.1:{_free_port()}/api/v2/spans",
        "up": f"http://127.0.0.1:{port}/api/v2/spans",
    }
    costs: dict[str, list[float]] = {"down": [], "up": []}
    exported = {"down": 0.0, "up": 0.0}
    dropped = {"down": 0.0, "up": 0.0}
    try:
        for r in range(rounds):
            for side in ("up", "down") if r % 2 else ("down", "up"):
                cost, sent, lost = await _enqueue_cost(endpoints[side], seconds)
                costs[side].append(cost)
                exported[side] += sent
                dropped[side] += lost
    finally:
        await runner.cleanup()
    return (
        (Figure(tuple(costs["down"])), exported["down"], dropped["down"]),
        (Figure(tuple(costs["up"])), exported["up"], dropped["up"]),
    )


def _encoding_row(what: str, figures: tuple[Figure, Figure], peer: str) -> Row:
    ours, otel = figures
    return {
        "name": (
            f"{what} (per span, batch 512; {len(ours.rounds)} rounds, "
            f"ours {ours.spread()}, peer {otel.spread()} us)"
        ),
        "ours": ours.median,
        "peer": otel.median,
        "unit": "us",
        "goal_ratio": 0.5,
        "peer_name": peer,
    }


def run() -> list[Row]:
    encoding = measure_encoding()
    down, up = asyncio.run(measure_enqueue())
    return [
        _encoding_row(
            "otlp encode vs OTel proto-common",
            encoding["otlp"],
            "opentelemetry-exporter-otlp-proto-common 1.27",
        ),
        _encoding_row(
            "zipkin json encode vs OTel zipkin-json",
            encoding["zipkin"],
            "opentelemetry-exporter-zipkin-json 1.27",
        ),
        {
            "name": (
                f"on_end, backend down (dropped {down[2]:.0f}) vs up (exported {up[1]:.0f}); "
                f"{len(down[0].rounds)} rounds, down {down[0].spread()}, "
                f"up {up[0].spread()} us"
            ),
            "ours": down[0].median,
            "peer": up[0].median,
            "unit": "us",
            "goal_ratio": 1.5,
            "peer_name": "gatetrace with a healthy backend",
        },
    ]


def main() -> None:
    for row in run():
        ratio = row["ours"] / row["peer"]
        verdict = "ok" if ratio <= row["goal_ratio"] else "MISSED"
        print(
            f"{row['name']}: ours {row['ours']:.2f} {row['unit']}, peer {row['peer']:.2f} "
            f"{row['unit']}, ratio {ratio:.2f} (goal <= {row['goal_ratio']}) {verdict}"
        )


if __name__ == "__main__":
    main()
