"""Gateway throughput and added latency: tracing off vs on, side by side in one run.

Processes, all on 127.0.0.1: one upstream (a tiny aiohttp app), one span
collector (accepts Zipkin and OTLP/HTTP POSTs), and one gateway per mode, each
applying its tracing config through the real admin path
(``tracing_apply.Applier``: policy model -> build -> batching engine -> Zipkin
exporter). The load generator is ``wrk`` in its own process (a small aiohttp
client process when wrk is not installed), bounded in time. Where the machine
allows (``os.sched_setaffinity``, two CPUs or more) the gateways are pinned to
one CPU and the upstream, collector and load generator to the others, so they
do not take turns on the gateway's. Rounds interleave the modes (rotated order
each round) so they share the machine's noise, and every figure is reported
with its spread over the rounds (min-max).

Modes: ``off`` (no tracing config: the untraced fast path), ``100%`` (const
sampler, batching Zipkin reporter), ``1%`` (probabilistic 0.01), and both
again with the reporter's backend down (a port nobody listens on).

These are wall-clock figures: on a small shared machine they move by +-25%
between runs, so they carry **no verdict**. The goals (100% keeps >= 90% of the
untraced throughput, 1% keeps >= 97%) are judged on instruction counts, steady
where wall clock is not: ``benchmarks.gateway_instructions``.

``run()`` (what ``python -m benchmarks`` calls; ~35 s) returns one
:class:`benchmarks.common.Row` per traced mode, without a goal: proxy time per
request (1 / req/s, median of the rounds) against the untraced gateway's in the
same run, the rounds' range in the row's name. The full table (CPU per request,
p99 added latency, no-reporter modes): ``.venv/bin/python -m
benchmarks.bench_gateway [--rounds N] [--seconds S] [--modes ...]``.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import common

GOALS = {"100%": 0.90, "1%": 0.97}
PATH = "/api/items/1"


# -- child processes --------------------------------------------------------


def _ready(port: int) -> None:
    print(f"READY {port}", flush=True)


async def _serve_upstream() -> None:
    from aiohttp import web

    body = b'{"id":1,"name":"item"}'

    async def item(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", item)
    await _serve(app)


def _otlp_span_count(data: bytes) -> int:
    """Spans in an OTLP/HTTP protobuf ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    message = trace_service_pb2.ExportTraceServiceRequest()
    message.ParseFromString(data)
    return sum(len(scope.spans) for rs in message.resource_spans for scope in rs.scope_spans)


async def _serve_collector() -> None:
    """Accepts Zipkin v2 JSON (``POST /api/v2/spans``) and OTLP/HTTP protobuf
    (``POST /v1/traces``), gzipped or not, and counts the spans (``GET /stats``)."""
    from aiohttp import web

    received = {"requests": 0, "bytes": 0, "spans": 0}

    async def body(request: web.Request) -> bytes:
        data = await request.read()  # aiohttp has inflated a gzip body already
        received["requests"] += 1
        received["bytes"] += len(data)
        return data

    async def zipkin_spans(request: web.Request) -> web.Response:
        received["spans"] += len(json.loads(await body(request)))  # a JSON list of spans
        return web.Response(status=202)

    async def otlp_spans(request: web.Request) -> web.Response:
        received["spans"] += _otlp_span_count(await body(request))
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/api/v2/spans", zipkin_spans)
    app.router.add_post("/v1/traces", otlp_spans)
    app.router.add_get("/stats", stats)
    await _serve(app)


async def _serve(app: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server  # the bound port of an ephemeral site
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    _ready(port)
    await asyncio.Event().wait()


def _tracing_document(mode: str, collector: str) -> dict[str, Any] | None:
    if mode == "off":
        return None
    rate = 1.0 if mode.startswith("100%") else 0.01
    sampler: dict[str, Any] = (
        {"type": "const", "decision": True}
        if rate == 1.0
        else {"type": "probabilistic", "rate": rate}
    )
    sampling: dict[str, Any] = {"sampler": sampler}
    if "priority" in mode:  # keep errors: dropped traces are recorded until they end
        sampling["prioritize"] = {"errors": True}
    return {
        "sampling": sampling,
        # under callgrind the gateway runs ~50x slower: a queue and timeout large enough
        # that every span traced is delivered, so the count includes all of its export
        "batching": {"maxQueueSize": 100_000, "exportTimeoutMs": 600_000},
        "reporters": [] if "no reporter" in mode else [_reporter(mode, collector)],
    }


def _reporter(mode: str, collector: str) -> dict[str, Any]:
    """Zipkin by default; ``otlp`` in the mode: OTLP/HTTP protobuf; ``no gzip``: bodies
    sent uncompressed (as OpenTelemetry's exporters send them by default)."""
    reporter: dict[str, Any] = (
        {"type": "otlpHttp", "endpoint": f"{collector}/v1/traces"}
        if "otlp" in mode
        else {"type": "zipkin", "endpoint": f"{collector}/api/v2/spans"}
    )
    if "no gzip" in mode:
        reporter["gzip"] = False
    return reporter


async def _serve_gateway(upstream: str, mode: str, collector: str) -> None:
    from aiohttp import web

    from gatetrace.gateway import config, exporters, proxy_app, state, store, tracing_apply
    from gatetrace.runtime import metrics

    settings = config.parse_config(
        {"routes": [{"name": "items", "prefix": "/api/items", "upstream": upstream}]}
    )
    registry = metrics.Registry()
    holder = state.TracingHolder()
    document = _tracing_document(mode, collector)
    if document is not None:
        applier = tracing_apply.Applier(
            holder,
            service="bench-gateway",
            registry=registry,
            exporters=exporters.factory(store.SpanStore()),
        )
        await applier.apply(document, revision=1, source="bench")
    if "decision reused" in mode or "constant headers" in mode:
        _lower_bound(mode)
    app = proxy_app.make_proxy_app(settings, holder, registry)
    proxy_app.tune_collector()  # as `gatetrace gateway` does at start
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    server = site._server
    assert server is not None
    _ready(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    await asyncio.Event().wait()


def _lower_bound(mode: str) -> None:
    """Patch this gateway process into a lower bound of the 1% path (a measurement, never
    the product). ``decision reused``: every request gets the first unsampled request's
    trace, as if extracting, sampling and making ids were free. ``constant headers``: also
    both headers (traceparent upstream, the trace id back) written as constants, as if
    formatting and injecting were free too; what is left is the middleware, its observer
    and aiohttp carrying two more headers."""
    from gatetrace.gateway import middleware, request_trace

    start = middleware.TracingMiddleware._start
    first: list[request_trace.UnrecordedTrace] = []

    def reused(self: middleware.TracingMiddleware, active: Any, request: Any) -> Any:
        if first:
            return first[0]
        trace = start(self, active, request)
        if isinstance(trace, request_trace.UnrecordedTrace):
            first.append(trace)
        return trace

    middleware.TracingMiddleware._start = reused  # type: ignore[method-assign]
    if "constant headers" not in mode:
        return

    def on_request(self: request_trace.UnrecordedTrace, route: Any, url: str, headers: Any) -> None:
        headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"

    def on_response(self: request_trace.UnrecordedTrace, status: int, headers: Any) -> None:
        headers[self.header_name] = "0af7651916cd43dd8448eb211c80319c"

    request_trace.UnrecordedTrace.on_request = on_request  # type: ignore[method-assign]
    request_trace.UnrecordedTrace.on_response = on_response  # type: ignore[method-assign]


async def _python_load(url: str, connections: int, seconds: float) -> None:
    """Fallback load generator: ``connections`` keep-alive clients for ``seconds``."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    result = {"rps": len(latencies) / elapsed, "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3}
    print(json.dumps({**result, "errors": errors}), flush=True)


def _child(argv: Sequence[str]) -> None:
    kind = argv[0]
    if kind == "upstream":
        asyncio.run(_serve_upstream())
    elif kind == "collector":
        asyncio.run(_serve_collector())
    elif kind == "gateway":
        asyncio.run(_serve_gateway(argv[1], argv[2], argv[3]))
    elif kind == "load":
        asyncio.run(_python_load(argv[1], int(argv[2]), float(argv[3])))
    else:
        raise SystemExit(f"unknown child {kind!r}")


# -- the parent: processes, load, figures ----------------------------------


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float = 0.0
    """Gateway process CPU time per request (robust against other load on the machine)."""


def _child_env() -> dict[str, str]:
    """This environment plus the source root and the repository on PYTHONPATH."""
    env = dict(os.environ)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [os.path.join(repo, "operator"), repo, env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def _cpu_sets() -> tuple[set[int], set[int]] | None:
    """(the gateways' CPUs, everyone else's) where pinning is possible: the first CPU
    this process may use for the gateway under test, the rest for upstream, collector
    and load generator; None on a single CPU or without ``sched_setaffinity``."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


CPUS = _cpu_sets()


def pin(pid: int, gateway: bool) -> None:
    """Pin process ``pid`` to the gateways' CPU or the others' (nothing where unsupported)."""
    if CPUS is not None:
        os.sched_setaffinity(pid, CPUS[0] if gateway else CPUS[1])


def pinning() -> str:
    """How processes are pinned, for the report."""
    if CPUS is None:
        return "not pinned (one CPU or no sched_setaffinity)"
    return f"gateway on CPU {sorted(CPUS[0])}, the rest on CPUs {sorted(CPUS[1])}"


class Children:
    """Child processes started from this file, all stopped on exit; ``pinned``: each
    pinned to its CPUs (see :func:`pin`; a gateway apart from the others)."""

    def __init__(self, pinned: bool = False) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.pids: dict[int, int] = {}
        """port -> pid of the child serving it."""
        self.pinned = pinned

    def start(self, *args: str) -> int:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        self.procs.append(proc)
        if self.pinned:
            pin(proc.pid, gateway=args[0] == "gateway")
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"READY (\d+)", line)
        if not match:
            raise RuntimeError(f"child {args} did not start: {line!r}")
        port = int(match.group(1))
        self.pids[port] = proc.pid
        return port

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def children(pinned: bool = False) -> Iterator[Children]:
    c = Children(pinned)
    try:
        yield c
    finally:
        c.stop()


@dataclass(frozen=True)
class GatewayCli:
    """A real ``gatetrace gateway`` process (see :func:`gateway_cli`)."""

    proxy: str
    admin: str
    pid: int
    token: str


@contextlib.contextmanager
def gateway_cli(upstream_port: int, tracing_yaml: str = "") -> Iterator[GatewayCli]:
    """The real ``gatetrace gateway`` CLI on free 127.0.0.1 ports, one route ``/api/items``
    to the upstream, ``tracing_yaml`` appended to its config; stopped on exit."""
    proxy_port, admin_port = _free_port(), _free_port()
    token = secrets.token_hex(8)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "gateway.yaml")
        with open(config, "w") as out:
            out.write(
                f"listen: 127.0.0.1:{proxy_port}\n"
                f"admin: {{listen: '127.0.0.1:{admin_port}'}}\n"
                "routes:\n"
                f"  - {{name: items, prefix: /api/items, "
                f"upstream: 'http://127.0.0.1:{upstream_port}'}}\n" + tracing_yaml
            )
        gatetrace = os.path.join(os.path.dirname(sys.executable), "gatetrace")
        proc = subprocess.Popen(
            [gatetrace, "gateway", "--config", config, "--log-level", "WARNING"],
            env=_child_env() | {"GATETRACE_ADMIN_TOKEN": token},
            stdout=subprocess.DEVNULL,
        )
        try:
            yield GatewayCli(
                f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{admin_port}", proc.pid, token
            )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc); 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        raise RuntimeError(f"wrk output has no {label!r} line:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _pin_others() -> None:
    """``preexec_fn`` of the load generator: off the gateways' CPU."""
    if CPUS is not None:
        os.sched_setaffinity(0, CPUS[1])


def load(url: str, connections: int, seconds: float, pinned: bool = False) -> Sample:
    """One bounded load run against ``url`` from a separate process (``pinned``: kept
    off the gateways' CPU)."""
    preexec = _pin_others if pinned else None
    wrk = shutil.which("wrk")
    if wrk is not None:
        duration = f"-d{max(1, round(seconds))}s"
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", duration, "--latency", "--timeout", "5s", url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
            preexec_fn=preexec,
        ).stdout
        rps_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if rps_match is None:
            raise RuntimeError(f"wrk output has no Requests/sec:\n{out}")
        errors = 0
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if non_2xx is not None:
            errors += int(non_2xx.group(1))
        socket_errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        if socket_errors is not None:
            errors += sum(int(n) for n in socket_errors.groups())
        return Sample(float(rps_match.group(1)), _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), errors)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "load", url, str(connections), str(seconds)],
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        preexec_fn=preexec,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Sample(data["rps"], data["p50_ms"], data["p99_ms"], data["errors"])


MODES = ("off", "100%", "1%", "100%, backend down", "1%, backend down")
EXTRA_MODES = (
    "100%, no reporter",
    "1%, no reporter",
    "1%, priority",
    "1%, decision reused",
    "1%, constant headers",
)
"""Optional (``--modes``): tracing without any reporter, to separate the two costs;
1% with error priority (the other 99% recorded until they end, then discarded); and two
lower bounds of the 1% path (see :func:`_lower_bound`)."""


RUN_MODES = ("off", "100%", "1%", "100%, backend down")
"""What ``run()`` measures (kept under ~35 s); ``main()`` measures every mode."""


def _range(values: Sequence[float], digits: int = 0) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def run() -> list[common.Row]:
    """The ``python -m benchmarks`` rows: time per request, traced vs untraced, no verdict."""
    rows = []
    for row in measure(rounds=3, seconds=1.0, modes=RUN_MODES, warmup=1.0):
        if row["case"] == "off":
            continue
        untraced_us = 1e6 / row["off_rps"]
        rows.append(
            common.Row(
                name=(
                    f"wall clock: gateway request, {row['case']} ({row['rounds']} rounds, "
                    f"vs off {row['paired_range']}, p99 at c=1 added "
                    f"{row['added_p99_ms']:+.2f} ms [{row['added_p99_range']}])"
                ),
                ours=untraced_us / row["paired_ratio"],
                peer=untraced_us,
                unit="us",
                goal_ratio=None,
                peer_name="the untraced gateway, same run",
            )
        )
    return rows


def measure(
    rounds: int = 3,
    seconds: float = 3.0,
    connections: int = 32,
    modes: Sequence[str] = MODES,
    warmup: float = 1.0,
) -> list[dict[str, Any]]:
    """Measure every mode ``rounds`` times, modes rotated each round, processes pinned;
    one row per mode: medians over the rounds and their ranges (min-max)."""
    throughput: dict[str, list[Sample]] = {m: [] for m in modes}
    latency: dict[str, list[Sample]] = {m: [] for m in modes}
    with children(pinned=True) as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        down = f"http://127.0.0.1:{_free_port()}"
        gateways = {
            mode: procs.start("gateway", upstream, mode, down if "down" in mode else collector)
            for mode in modes
        }
        for port in gateways.values():  # warm up each gateway and its pools
            load(f"http://127.0.0.1:{port}{PATH}", connections, warmup, pinned=True)
        for r in range(rounds):
            order = [*modes[r % len(modes) :], *modes[: r % len(modes)]]
            for mode in order:
                url = f"http://127.0.0.1:{gateways[mode]}{PATH}"
                pid = procs.pids[gateways[mode]]
                cpu_before = cpu_seconds(pid)
                sample = load(url, connections, seconds, pinned=True)
                used = cpu_seconds(pid) - cpu_before
                requests = sample.rps * max(1, round(seconds))
                sample.cpu_us_per_request = used / requests * 1e6 if requests else 0.0
                throughput[mode].append(sample)
                latency[mode].append(load(url, 1, max(1.0, seconds / 2), pinned=True))
    return [_mode_row(mode, throughput, latency, rounds) for mode in modes]


def _mode_row(
    mode: str,
    throughput: dict[str, list[Sample]],
    latency: dict[str, list[Sample]],
    rounds: int,
) -> dict[str, Any]:
    """Medians over the rounds and their ranges; ratios and added latency are paired per
    round (both modes saw the same background load in that round)."""
    off_t, off_l = throughput["off"], latency["off"]
    mine_t, mine_l = throughput[mode], latency[mode]
    base_rps = statistics.median(s.rps for s in off_t)
    base_cpu = statistics.median(s.cpu_us_per_request for s in off_t)
    rps = [s.rps for s in mine_t]
    cpu = [s.cpu_us_per_request for s in mine_t]
    paired = [s.rps / o.rps for s, o in zip(mine_t, off_t, strict=True)]
    added_p99 = [s.p99_ms - o.p99_ms for s, o in zip(mine_l, off_l, strict=True)]
    cpu_median = statistics.median(cpu)
    return {
        "benchmark": "gateway",
        "case": mode,
        "rps": round(statistics.median(rps), 1),
        "rps_range": _range(rps),
        "off_rps": round(base_rps, 1),
        "paired_ratio": round(statistics.median(paired), 3),
        "paired_range": _range(paired, 3),
        "cpu_us_per_request": round(cpu_median, 1),
        "cpu_range": _range(cpu),
        "cpu_ratio": round(base_cpu / cpu_median, 3) if cpu_median else None,
        "p50_ms_c1": round(statistics.median(s.p50_ms for s in mine_l), 3),
        "p99_ms_c1": round(statistics.median(s.p99_ms for s in mine_l), 3),
        "added_p99_ms": round(statistics.median(added_p99), 3),
        "added_p99_range": _range(added_p99, 2),
        "saturated_p99_ms": round(statistics.median(s.p99_ms for s in mine_t), 3),
        "errors": sum(s.errors for s in mine_t + mine_l),
        "rounds": rounds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--child":
        _child(args[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--modes",
        default=";".join(MODES),
        # argparse %-formats help texts: the modes' % doubled
        help="';'-separated subset of: "
        + "; ".join(MODES + EXTRA_MODES).replace("%", "%%")
        + " ('off' is always run)",
    )
    options = parser.parse_args(args)
    generator = "wrk" if shutil.which("wrk") else "python aiohttp client"
    print(
        f"gateway benchmark (wall clock): {options.rounds} rounds x {options.seconds}s per "
        f"mode, {options.connections} connections ({generator}); latency at 1 connection; "
        f"{pinning()}"
    )
    chosen = [m.strip() for m in options.modes.split(";") if m.strip()]
    unknown = set(chosen) - set(MODES + EXTRA_MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    if "off" not in chosen:
        chosen.insert(0, "off")
    rows = measure(options.rounds, options.seconds, options.connections, chosen)
    print(
        f"{'mode':<20}{'req/s':>7}{'[range]':>12}{'vs off':>7}{'[range]':>13}"
        f"{'CPU us/req':>11}{'[range]':>10}{'capacity':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'+p99 ms':>8}{'[range]':>13}{'errors':>7}"
    )
    for row in rows:
        print(
            f"{row['case']:<20}{row['rps']:>7.0f}{row['rps_range']:>12}"
            f"{row['paired_ratio']:>7.3f}{row['paired_range']:>13}"
            f"{row['cpu_us_per_request']:>11.0f}{row['cpu_range']:>10}"
            f"{row['cpu_ratio'] or 0:>9.3f}{row['p50_ms_c1']:>8.3f}{row['p99_ms_c1']:>8.3f}"
            f"{row['added_p99_ms']:>+8.3f}{row['added_p99_range']:>13}{row['errors']:>7}"
        )
    print(
        "Medians over the rounds, [min-max] over the rounds. vs off: req/s divided by the "
        "untraced req/s of the same round; capacity: untraced CPU per request / this mode's; "
        "p50/p99 at 1 connection; +p99: minus the untraced p99 of the same round. Wall clock "
        "carries no verdict: the goals (100% >= 0.90, 1% >= 0.97 of the untraced throughput) "
        "are judged on instruction counts (python -m benchmarks.gateway_instructions)."
    )


if __name__ == "__main__":
    main()
