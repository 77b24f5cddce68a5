"""Gateway worker processes: what coordination costs per request, what two workers serve,
and how many spans one supervisor absorbs from its workers.

1. **Instructions per request, every process counted.** The real ``gatetrace gateway``
   CLI runs under ``valgrind --tool=callgrind --trace-children=yes``: with ``workers: 2``
   that is the supervisor and both workers, with ``workers: 1`` the single process.
   Counting is switched on in every one of them while a fixed number of requests goes
   through (after a warm-up), and, at 100%, until the span sink holds every traced span
   (the run fails otherwise); the figure is the sum over the processes divided by the
   requests. Modes: 1% and 100% with the Zipkin reporter (the sink is
   ``bench_gateway``'s collector), and 100% with the ``memory`` reporter, whose spans
   the workers ship to the supervisor's store (the sink is the store: its
   ``gatetrace_store_spans`` gauge). Rounds of 1 and 2 workers are interleaved.
   Goal: 2 workers <= 1.05x one worker's instructions per request.
2. **Requests/s, wall clock.** wrk with one thread (or ``bench_gateway``'s Python load
   generator when wrk is missing) against ``workers: 1`` and ``workers: 2`` at 1%,
   rounds interleaved; median and spread. No verdict: a 2-core machine also runs the
   load generator and the upstream.
3. **Span shipping.** A sender process writes batches of 512 finished spans to a
   supervisor-side reader over the same channel the workers use (encode, frame, pickle);
   the reader decodes them into a real span store. Reported: spans/s the reader absorbs
   per CPU second of its own (goal >= 50,000) and the p99 time one batch holds the
   supervisor's event loop (what it adds to an admin or query request waiting behind it).

Usage: ``.venv/bin/python -m benchmarks.bench_workers [--requests N] [--rounds N]
[--skip-instructions] [--skip-wallclock] [--skip-shipping]``.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from benchmarks import bench_gateway, common, gateway_instructions

_MODULE = "benchmarks.bench_workers"
_BREAKDOWN = "--breakdown" in sys.argv
"""Print each process's share of the instructions too."""
INSTRUCTION_GOAL = 1.05
SHIPPING_GOAL = 50_000
MODES = ("1%", "100%", "100%, memory")


@dataclass(frozen=True)
class Running:
    proxy: str
    admin: str
    token: str
    pid: int


def _tracing(mode: str, collector: str) -> dict[str, Any] | None:
    if mode == "off":
        return None
    if mode == "100%, memory":
        document = bench_gateway._tracing_document("100%", collector)
        assert document is not None
        document["reporters"] = [{"type": "memory", "maxSpans": 1_000_000}]
        return document
    document = bench_gateway._tracing_document(mode, collector)
    assert document is not None
    return document


@contextlib.contextmanager
def gateway(
    workers: int,
    mode: str,
    upstream: str,
    collector: str,
    *,
    callgrind_dir: str | None = None,
    loop: str = "asyncio",
) -> Iterator[Running]:
    """The real CLI with ``workers`` on ``loop`` (under callgrind, counting off, when
    ``callgrind_dir``)."""
    proxy_port, admin_port = bench_gateway._free_port(), bench_gateway._free_port()
    token = secrets.token_hex(8)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gateway.yaml")
        with open(path, "w") as out:
            yaml.safe_dump(
                {
                    "workers": workers,
                    "eventLoop": loop,
                    "listen": f"127.0.0.1:{proxy_port}",
                    "admin": {"listen": f"127.0.0.1:{admin_port}"},
                    "routes": [{"name": "items", "prefix": "/api/items", "upstream": upstream}],
                }
                | ({} if mode == "off" else {"tracing": _tracing(mode, collector)}),
                out,
            )
        argv = [sys.executable, "-m", "gatetrace.cli", "gateway", "--config", path]
        argv += ["--log-level", "WARNING"]
        if callgrind_dir is not None:
            argv = [
                "valgrind",
                "--tool=callgrind",
                "--trace-children=yes",
                "--instr-atstart=no",
                f"--callgrind-out-file={callgrind_dir}/callgrind.%p",
                *argv,
            ]
        proc = subprocess.Popen(
            argv,
            env=bench_gateway._child_env() | {"GATETRACE_ADMIN_TOKEN": token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running = Running(
            f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{admin_port}", token, proc.pid
        )
        try:
            _wait_ready(running, proc, 600.0 if callgrind_dir else 60.0, workers, mode != "off")
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _get(running: Running, path: str) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 -- http://127.0.0.1 only
        running.admin + path, headers={"Authorization": f"Bearer {running.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def _wait_ready(
    running: Running, proc: "subprocess.Popen[bytes]", timeout: float, workers: int, traced: bool
) -> None:
    """Until the gateway serves: every worker up, and a tracing config loaded if ``traced``
    (untraced, ``/readyz`` stays 503: no config is loaded)."""
    deadline = time.monotonic() + timeout

    def up() -> bool:
        if traced:
            return _get(running, "/readyz")[0] == 200
        if _get(running, "/healthz")[0] != 200:
            return False
        if workers == 1:
            return True
        status, body = _get(running, "/admin/v1/workers")
        return status == 200 and all(w["ready"] for w in json.loads(body)["workers"])

    while not up():
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise SystemExit(f"the gateway was not ready within {timeout:.0f}s")
        time.sleep(0.5)


def _pids(running: Running, workers: int) -> list[int]:
    """The gateway's processes: the supervisor (or single process) and its workers."""
    if workers == 1:
        return [running.pid]
    status, body = _get(running, "/admin/v1/workers")
    if status != 200:
        raise SystemExit(f"/admin/v1/workers answered {status}")
    pids = [int(w["pid"]) for w in json.loads(body)["workers"]]
    if len(pids) != workers:
        raise SystemExit(f"{len(pids)} workers running, {workers} configured")
    return [running.pid, *pids]


def _store_spans(running: Running) -> int:
    _, body = _get(running, "/metrics")
    match = re.search(rb"^gatetrace_store_spans (\d+)", body, re.M)
    return int(match.group(1)) if match else 0


def _wait(predicate: Any, what: str, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(0.5)


def instructions(
    workers: int,
    mode: str,
    upstream: str,
    collector: str,
    requests: int,
    warmup: int,
    loop: str = "asyncio",
) -> float:
    """Thousand instructions per request, summed over every process of the gateway."""
    with tempfile.TemporaryDirectory(prefix="gatetrace-workers-") as tmp:
        with gateway(workers, mode, upstream, collector, callgrind_dir=tmp, loop=loop) as running:
            pids = _pids(running, workers)
            url = running.proxy + bench_gateway.PATH
            zipkin = mode in ("100%",)
            memory = mode == "100%, memory"
            before = gateway_instructions._collected(collector) if zipkin else 0
            gateway_instructions._send(url, warmup)
            if memory:  # the warm-up's spans are in the store before counting starts
                _wait(lambda: _store_spans(running) >= 2 * warmup, f"{mode} warm-up")
            for pid in pids:
                gateway_instructions._callgrind_control("-i", "on", pid)
            gateway_instructions._send(url, requests)
            if zipkin:
                expected = before + 2 * (warmup + requests)
                gateway_instructions._wait_delivered(collector, expected, mode)
            if memory:
                expected = 2 * (warmup + requests)
                _wait(lambda: _store_spans(running) >= expected, f"{mode}: spans in the store")
                if (got := _store_spans(running)) != expected:
                    raise SystemExit(f"{mode}: the store holds {got} spans, {expected} traced")
            for pid in pids:
                gateway_instructions._callgrind_control("-i", "off", pid)
                gateway_instructions._callgrind_control("-d", pid)
        if _BREAKDOWN:
            shares = []
            for pid in pids:
                name = "supervisor" if pid == running.pid and workers > 1 else f"pid {pid}"
                own = gateway_instructions._callgrind_total(os.path.join(tmp, f"callgrind.{pid}"))
                shares.append(f"{name} {own / requests / 1e3:.1f}k")
            print(f"  {mode}, {workers} worker(s): {', '.join(shares)}", flush=True)
        total = gateway_instructions._callgrind_total(os.path.join(tmp, "callgrind."))
        return total / requests / 1e3


def wallclock(upstream: str, collector: str, rounds: int, seconds: float) -> dict[int, list[float]]:
    """Requests/s of ``workers: 1`` and ``workers: 2`` at 1%, rounds interleaved."""
    found: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            with gateway(workers, "1%", upstream, collector) as running:
                url = running.proxy + bench_gateway.PATH
                bench_gateway.load(url, 32, 1.0)  # warm-up
                sample = bench_gateway.load(url, 32, seconds)
                if sample.errors:
                    raise SystemExit(f"{sample.errors} failed requests with {workers} worker(s)")
                found[workers].append(sample.rps)
    return found


# -- span shipping --------------------------------------------------------------


def _spans(count: int) -> list[Any]:
    from gatetrace.runtime import sampling, span, tracer

    class Keep:
        def __init__(self) -> None:
            self.spans: list[span.Span] = []

        def on_end(self, s: span.Span) -> None:
            self.spans.append(s)

    keep = Keep()
    t = tracer.Tracer(
        span.Resource("edge", (("k8s.pod.name", "gw-0"), ("service.instance.id", "x"))),
        sampler=sampling.ConstSampler(True),
        processor=keep,
    )
    for i in range(count // 2):
        root = t.start_span("GET /api/items/{id}", kind=span.SpanKind.SERVER, parent=None)
        for key, value in (
            ("http.request.method", "GET"),
            ("url.path", f"/api/items/{i}"),
            ("http.route", "/api/items"),
            ("http.response.status_code", 200),
            ("server.address", "gw.example"),
            ("client.address", "10.0.0.7"),
            ("user_agent.original", "bench/1.0"),
        ):
            root.set_tag(key, value)
        child = t.start_span("GET", kind=span.SpanKind.CLIENT, parent=root)
        child.set_tag("server.address", "items.default.svc")
        child.set_tag("http.response.status_code", 200)
        child.finish()
        root.finish()
    return keep.spans


async def _send_batches(fd: int, batches: int, size: int) -> None:
    from gatetrace.gateway import span_wire, worker_channel

    channel = await worker_channel.Channel.open(socket.socket(fileno=fd))
    spans = _spans(size)
    for _ in range(batches):
        channel.send({"op": "spans", "spans": span_wire.encode(spans)})
        await channel.drain()
    await channel.aclose()


async def _absorb(sock: socket.socket) -> tuple[int, float, float, list[float]]:
    from gatetrace.gateway import proxy_app, span_wire, store, worker_channel

    proxy_app.tune_collector()  # as the supervisor does once it serves
    channel = await worker_channel.Channel.open(sock)
    spans_store = store.SpanStore(max_spans=200_000)
    received = 0
    held: list[float] = []
    first = 0.0
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with contextlib.suppress(worker_channel.ChannelClosedError):
        while True:
            message = await channel.receive()
            started = time.perf_counter()
            first = first or started
            spans, sizes = span_wire.decode(message["spans"])
            spans_store.add(spans, sizes=sizes)
            held.append(time.perf_counter() - started)
            received += len(spans)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return received, cpu, time.perf_counter() - first, held


def shipping(batches: int, size: int = 512) -> tuple[int, float, float, list[float]]:
    """Spans received, reader CPU seconds, wall seconds, per-batch loop hold times."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    sender = subprocess.Popen(
        [
            sys.executable,
            "-m",
            _MODULE,
            "--child",
            "ship",
            str(theirs.fileno()),
            str(batches),
            str(size),
        ],
        pass_fds=(theirs.fileno(),),
        env=bench_gateway._child_env(),
    )
    theirs.close()
    try:
        result = asyncio.run(_absorb(mine))
    finally:
        sender.wait(60)
    if result[0] != batches * size:
        raise SystemExit(f"shipping: {result[0]} spans received, {batches * size} sent")
    return result


def _compare_loops(requests: int, warmup: int) -> None:
    """One gateway process, asyncio's loop vs uvloop, by instructions per request."""
    print(f"event loop, one process, instructions per request ({requests} req)")
    print(f"{'mode':<16}{'asyncio':>12}{'uvloop':>12}{'ratio':>8}")
    with bench_gateway.children() as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        for mode in ("off", "1%", "100%"):
            costs = [
                instructions(1, mode, upstream, collector, requests, warmup, loop=loop)
                for loop in ("asyncio", "uvloop")
            ]
            print(
                f"{mode:<16}{costs[0]:>11.1f}k{costs[1]:>11.1f}k{costs[1] / costs[0]:>8.3f}",
                flush=True,
            )


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def run() -> list[common.Row]:
    """``make bench``'s rows (smaller counts than :func:`main`'s defaults)."""
    rows: list[common.Row] = []
    received, cpu, _wall, _held = shipping(200)
    rows.append(
        common.Row(
            "span shipping: supervisor CPU per span (decode + store)",
            cpu / received * 1e6,
            1e6 / SHIPPING_GOAL,
            unit="us",
            goal_ratio=1.0,
            peer_name=f"the goal's budget ({SHIPPING_GOAL:,} spans/s)",
        )
    )
    with bench_gateway.children() as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        if shutil.which("valgrind") is not None and shutil.which("callgrind_control"):
            for mode in ("1%", "100%"):
                one = instructions(1, mode, upstream, collector, 600, 200)
                two = instructions(2, mode, upstream, collector, 600, 200)
                rows.append(
                    common.Row(
                        f"instructions per request, 2 workers (all processes) vs 1, {mode}",
                        two,
                        one,
                        unit="k instr",
                        goal_ratio=INSTRUCTION_GOAL,
                        peer_name="workers: 1, same run",
                    )
                )
        rps = wallclock(upstream, collector, 2, 2.0)
        rows.append(
            common.Row(
                "wall clock per request at 1%, 2 workers vs 1 (median of 2 rounds)",
                1e6 / statistics.median(rps[2]),
                1e6 / statistics.median(rps[1]),
                unit="us",
                goal_ratio=None,
                peer_name="workers: 1, same run",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--child":
        if args[1] != "ship":
            raise SystemExit(f"unknown child {args[1]!r}")
        asyncio.run(_send_batches(int(args[2]), int(args[3]), int(args[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--modes", default=";".join(MODES))
    parser.add_argument("--skip-instructions", action="store_true")
    parser.add_argument("--skip-wallclock", action="store_true")
    parser.add_argument("--skip-shipping", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="each process's share")
    parser.add_argument(
        "--loops",
        action="store_true",
        help="instead: one process on asyncio's loop vs on uvloop (untraced, 1%%, 100%%)",
    )
    options = parser.parse_args(args)
    modes = [m.strip() for m in options.modes.split(";") if m.strip()]
    if options.loops:
        _compare_loops(options.requests, options.warmup)
        return
    if not options.skip_shipping:
        received, cpu, wall, held = shipping(400)
        p99 = sorted(held)[int(len(held) * 0.99) - 1] * 1e3
        rate = received / cpu
        verdict = "ok" if rate >= SHIPPING_GOAL else "BELOW GOAL"
        print(
            f"span shipping: {received:,} spans, {rate:,.0f} spans per CPU second of the "
            f"supervisor ({received / wall:,.0f}/s wall), p99 loop hold per 512-span batch "
            f"{p99:.2f} ms; goal >= {SHIPPING_GOAL:,}/s {verdict}",
            flush=True,
        )
    with bench_gateway.children() as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        if not options.skip_instructions:
            if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
                raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
            print(f"instructions per request, every gateway process ({options.requests} req)")
            print(f"{'mode':<16}{'1 worker':>12}{'2 workers':>12}{'ratio':>8}  goal")
            for mode in modes:
                one = instructions(1, mode, upstream, collector, options.requests, options.warmup)
                two = instructions(2, mode, upstream, collector, options.requests, options.warmup)
                ratio = two / one
                verdict = "ok" if ratio <= INSTRUCTION_GOAL else "ABOVE GOAL"
                print(
                    f"{mode:<16}{one:>11.1f}k{two:>11.1f}k{ratio:>8.3f}  "
                    f"<= {INSTRUCTION_GOAL} {verdict}",
                    flush=True,
                )
        if not options.skip_wallclock:
            tool = "wrk -t1" if shutil.which("wrk") else "Python load generator"
            rps = wallclock(upstream, collector, options.rounds, options.seconds)
            ratios = [b / a for a, b in zip(rps[1], rps[2], strict=True)]
            print(
                f"requests/s at 1% ({tool}, 32 connections, {options.rounds} interleaved "
                f"rounds of {options.seconds:.0f}s; median (min-max)): 1 worker "
                f"{_spread(rps[1])}, 2 workers {_spread(rps[2])}, ratio "
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
