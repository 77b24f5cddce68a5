"""OTLP spans ingested by the gateway's receiver while it proxies, and the proxy's p99
latency with and without 1,000 spans/s being ingested, side by side in one run.

Processes on 127.0.0.1: the upstream (``bench_gateway``'s tiny aiohttp app), the real
``gatetrace gateway`` CLI (tracing every request into its memory store) and, while
ingesting, a sender process (this file, ``--send``) POSTing ready-made
``ExportTraceServiceRequest`` bodies (:data:`BATCH` spans each: 8 attributes, one event;
fresh trace ids in every request) to ``/v1/traces``. This process measures the proxy as
``bench_slowloris`` does: 600 keep-alive requests over 4 connections per measurement.

* **Latency**: rounds alternate (which goes first alternates too) between a calm
  measurement and one while the sender holds :data:`RATE` spans/s. Each ingesting round
  checks that the sender ran across the whole measurement, every request it sent got
  200 with no rejected spans, and the gateway's ``gatetrace_otlp_spans_total{stored}``
  grew by exactly the spans sent. Row: p99 while ingesting / p99 calm (goal <= 1.5).
* **Throughput**: the sender sends :data:`FLOOD` spans as fast as two connections allow
  while this process keeps proxying; spans stored (checked as above) per second of the
  flood, shown in the second row's name (wall clock: on a shared 2-core machine it moves
  with the load). The row itself counts CPU instructions, steady where wall clock is
  not: the receiver's own work per span (decode, check, build, store: everything but
  HTTP) against opentelemetry-proto's generated classes (upb, C) merely parsing the same
  bodies, each in a child process under ``valgrind --tool=callgrind`` with counting on
  only while the work runs (goal <= 50: a decoder in Python does a few dozen times the
  instructions of upb; every span stored is checked).

``python -m benchmarks.bench_otlp_ingest`` prints both rows and the spread of the rounds.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from benchmarks import bench_gateway, bench_slowloris, common, gateway_instructions

RATE = 1000
BATCH = 100
FLOOD = 10_000
ROUNDS = 3
GOAL_INSTRUCTIONS = 50.0
TRACING = (
    "tracing:\n"
    "  sampling: {sampler: {type: const, decision: true}}\n"
    "  batching: {flushIntervalMs: 100}\n"
)


# -- the sender (a child process) -----------------------------------------------------


def _bodies(count: int) -> list[bytes]:
    """``count`` request bodies of :data:`BATCH` spans each, every trace id fresh."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    def kv(key: str, value: Any) -> common_pb2.KeyValue:
        if isinstance(value, int):
            return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))

    resource = resource_pb2.Resource(
        attributes=[kv("service.name", "orders"), kv("host.name", "orders-7c9f")]
    )
    now = time.time_ns()
    bodies = []
    for _ in range(count):
        trace_id = os.urandom(16)
        spans = [
            trace_pb2.Span(
                trace_id=trace_id,
                span_id=os.urandom(8),
                parent_span_id=b"" if i == 0 else os.urandom(8),
                name=f"GET /orders/{i % 7}",
                kind=trace_pb2.Span.SPAN_KIND_SERVER,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1_500_000,
                attributes=[
                    kv("http.method", "GET"),
                    kv("http.route", "/orders/{id}"),
                    kv("http.status_code", 200),
                    kv("net.peer.name", "10.1.2.3"),
                    kv("user_agent.original", "curl/8.5.0"),
                    kv("order.id", i),
                    kv("tenant", "acme"),
                    kv("region", "eu-west-1"),
                ],
                events=[trace_pb2.Span.Event(time_unix_nano=now + 500_000, name="cache miss")],
            )
            for i in range(BATCH)
        ]
        request = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)]
                )
            ]
        )
        bodies.append(request.SerializeToString())
    return bodies


async def _send(admin: str, token: str, rate: float, bodies: list[bytes]) -> dict[str, Any]:
    """POST ``bodies`` (paced at ``rate`` spans/s, or as fast as two connections go when
    0) until they run out or stdin closes; what was sent and answered."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    statuses: dict[str, int] = {}
    rejected = 0
    started = time.monotonic()
    queue = list(enumerate(bodies))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # the parent closes our stdin when it has measured enough
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    sent = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal rejected, sent
        while queue and not stop.is_set():
            index, body = queue.pop(0)
            if rate:
                due = started + index * BATCH / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            async with http.post(admin + "/v1/traces", data=body, headers=headers) as response:
                answer = await response.read()
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                rejected += 1 if answer else 0  # a partial_success: something was rejected
                sent += BATCH

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2)) as http:
        await asyncio.gather(worker(http), worker(http))
    return {
        "sent": sent,
        "started": started,
        "ended": time.monotonic(),
        "statuses": statuses,
        "partial": rejected,
    }


# -- the parent ------------------------------------------------------------------------


class Sender:
    """The sender process: started, then awaited for its report."""

    def __init__(self, admin: str, token: str, rate: float, spans: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_otlp_ingest",
                "--send",
                admin,
                token,
                str(rate),
                str(spans),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=bench_gateway._child_env(),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("the OTLP sender did not start")

    async def report(self, *, wait: bool = False) -> dict[str, Any]:
        """Stop it (or, ``wait``, let it send all its spans) and read what it sent."""
        if wait:
            await asyncio.to_thread(self.proc.wait, 120)
        out, _ = await asyncio.to_thread(self.proc.communicate, "", 120)
        if self.proc.returncode:
            raise RuntimeError(f"the OTLP sender failed: {self.proc.returncode}")
        report: dict[str, Any] = json.loads(out)
        if report["statuses"] != {"200": report["sent"] // BATCH} or report["partial"]:
            raise RuntimeError(f"the gateway did not take every span: {report}")
        if not report["sent"]:
            raise RuntimeError("the OTLP sender sent nothing")
        return report


async def _stored(http: aiohttp.ClientSession, admin: str) -> float:
    async with http.get(admin + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith('gatetrace_otlp_spans_total{result="stored"} '):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _checked(
    http: aiohttp.ClientSession, admin: str, sender: Sender, before: float, *, wait: bool = False
) -> dict[str, Any]:
    report = await sender.report(wait=wait)
    for _ in range(50):  # the last request's spans are counted once its answer is sent
        stored = await _stored(http, admin) - before
        if stored >= report["sent"]:
            break
        await asyncio.sleep(0.05)
    if stored != report["sent"]:
        raise RuntimeError(f"{report['sent']} spans sent, {stored} stored")
    return report


async def _latency_rounds(proxy: str, admin: str, token: str) -> tuple[list[float], list[float]]:
    calm: list[float] = []
    ingesting: list[float] = []
    async with aiohttp.ClientSession() as http:
        await bench_slowloris._latencies(proxy)  # warm up
        for round_ in range(ROUNDS):
            for ingest in (round_ % 2 == 1, round_ % 2 == 0):
                if not ingest:
                    calm.append(bench_slowloris._p99(await bench_slowloris._latencies(proxy)))
                    continue
                before = await _stored(http, admin)
                sender = Sender(admin, token, RATE, RATE * 15)
                await asyncio.sleep(0.3)
                started = time.monotonic()
                ingesting.append(bench_slowloris._p99(await bench_slowloris._latencies(proxy)))
                ended = time.monotonic()
                report = await _checked(http, admin, sender, before)
                if not report["started"] <= started or not ended <= report["ended"]:
                    raise RuntimeError("the sender did not run across the whole measurement")
    return ingesting, calm


async def _flood(proxy: str, admin: str, token: str) -> float:
    """Seconds per span stored while flooding, the proxy kept busy meanwhile."""
    async with aiohttp.ClientSession() as http:
        before = await _stored(http, admin)
        sender = Sender(admin, token, 0, FLOOD)
        busy = asyncio.create_task(bench_slowloris._latencies(proxy))
        await busy
        report = await _checked(http, admin, sender, before, wait=True)
    return (report["ended"] - report["started"]) / report["sent"]


def _work(kind: str) -> Callable[[list[bytes]], None]:
    """What is counted: the receiver's own work on request bodies (decode, check, build,
    store; no HTTP), or the peer's (opentelemetry-proto's generated classes parsing)."""
    if kind == "peer":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        parse = trace_service_pb2.ExportTraceServiceRequest.FromString

        def peer(bodies: list[bytes]) -> None:
            for body in bodies:
                parse(body)

        return peer
    from gatetrace.gateway import otlp_protobuf, otlp_spans, store

    builder = otlp_spans.SpanBuilder()
    span_store = store.SpanStore()

    def ours(bodies: list[bytes]) -> None:
        held = len(span_store)
        for body in bodies:
            built = builder.build(otlp_protobuf.decode_request(body, max_spans=BATCH))
            for _, spans, shared in built.groups:
                span_store.add(spans, shared_bytes=shared)
            if built.accepted != BATCH:
                raise RuntimeError(f"{built.accepted} of {BATCH} spans built")
        if len(span_store) - held != len(bodies) * BATCH:
            raise RuntimeError(f"{len(span_store) - held} spans stored, not {len(bodies) * BATCH}")

    return ours


def _count_child(kind: str, batches: int) -> None:
    """Under callgrind: warm up, say READY, do the work once on ``go``, say DONE."""
    work = _work(kind)
    work(_bodies(2))
    bodies = _bodies(batches)
    print("READY", flush=True)
    sys.stdin.readline()
    work(bodies)
    print("DONE", flush=True)
    sys.stdin.read()


def _instructions(kind: str, batches: int = 10) -> float:
    """Instructions per span of ``kind``'s work, counted by callgrind in a child process
    (counting on only while the work runs)."""
    with tempfile.TemporaryDirectory(prefix="gatetrace-otlp-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        child = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "benchmarks.bench_otlp_ingest",
                "--count",
                kind,
                str(batches),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=bench_gateway._child_env(),
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            if child.stdout.readline().strip() != "READY":
                raise RuntimeError(f"the {kind} counting child did not start")
            gateway_instructions._callgrind_control("-i", "on", child.pid)
            child.stdin.write("go\n")
            child.stdin.flush()
            if child.stdout.readline().strip() != "DONE":
                raise RuntimeError(f"the {kind} counting child failed")
            gateway_instructions._callgrind_control("-i", "off", child.pid)
            gateway_instructions._callgrind_control("-d", child.pid)
        finally:
            child.stdin.close()
            child.wait(timeout=120)
        return gateway_instructions._callgrind_total(out) / (batches * BATCH)


def measure() -> dict[str, Any]:
    with bench_gateway.children() as kids:
        upstream = kids.start("upstream")
        with bench_gateway.gateway_cli(upstream, TRACING) as gateway:
            asyncio.run(bench_slowloris._wait_ready(gateway.proxy))
            ingesting, calm = asyncio.run(
                _latency_rounds(gateway.proxy, gateway.admin, gateway.token)
            )
            per_span = asyncio.run(_flood(gateway.proxy, gateway.admin, gateway.token))
    return {
        "ingesting": ingesting,
        "calm": calm,
        "per_span_us": per_span * 1e6,
        "ours_instructions": _instructions("ours"),
        "peer_instructions": _instructions("peer"),
    }


def _rows(figures: dict[str, Any]) -> list[common.Row]:
    return [
        common.Row(
            f"proxy p99 while the receiver ingests {RATE:,} OTLP spans/s",
            min(figures["ingesting"]),
            min(figures["calm"]),
            unit="ms",
            goal_ratio=1.5,
            peer_name="the same gateway, no spans ingested",
        ),
        common.Row(
            f"OTLP ingest work per span (decode, check, build, store; "
            f"{1e6 / figures['per_span_us']:,.0f} spans/s while proxying)",
            figures["ours_instructions"] / 1e3,
            figures["peer_instructions"] / 1e3,
            unit="k instr",
            goal_ratio=GOAL_INSTRUCTIONS,
            peer_name="opentelemetry-proto (upb, C) parsing the same bodies",
        ),
    ]


def run() -> list[common.Row]:
    return _rows(measure())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--send", nargs=4, metavar=("ADMIN", "TOKEN", "RATE", "SPANS"))
    parser.add_argument("--count", nargs=2, metavar=("KIND", "BATCHES"))
    args = parser.parse_args(argv)
    if args.count:
        _count_child(args.count[0], int(args.count[1]))
        return
    if args.send:
        admin, token, rate, spans = args.send
        bodies = _bodies(int(spans) // BATCH)
        print("READY", flush=True)
        print(json.dumps(asyncio.run(_send(admin, token, float(rate), bodies))))
        return
    figures = measure()
    for row in _rows(figures):
        print(
            f"{row.name}: {row.ours:.3f} {row.unit} vs {row.peer:.3f} {row.unit}, "
            f"ratio {row.ratio:.2f} (goal <= {row.goal_ratio:g})"
        )
    spread = {k: [round(v, 2) for v in figures[k]] for k in ("ingesting", "calm")}
    print(f"p99 per round (ms): {spread}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
