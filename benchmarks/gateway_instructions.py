"""Gateway cost per request in CPU instructions: tracing off vs on, one run.

Wall-clock throughput on a small shared machine moves by +-25% between runs
(see ``bench_gateway``); instruction counts do not. Each gateway runs under
``valgrind --tool=callgrind`` with counting switched on only while a fixed
number of requests goes through it (after a warm-up), so the figure is the
gateway process's own work per request: parsing, routing, proxying, tracing,
encoding and sending spans, garbage collection. The upstream, the span
collector and the load generator (``--child requests``, keep-alive aiohttp
clients) are separate processes on 127.0.0.1, as in ``bench_gateway``.

The ratio printed is the untraced gateway's instructions per request divided
by the mode's: the throughput the traced gateway keeps when the gateway's CPU
is the bottleneck. Goals as in ``bench_gateway``: >= 0.90 at 100%, >= 0.97 at
1%.

Usage: ``.venv/bin/python -m benchmarks.gateway_instructions [--requests N]
[--modes 'off;1%;100%'] [--keep DIR]``. Needs valgrind (Debian: ``apt-get install
valgrind``); about 30 s per mode for 3,000 requests.
"""

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from benchmarks import bench_gateway

GOALS = bench_gateway.GOALS
_MODULE = "benchmarks.gateway_instructions"


async def _requests(url: str, count: int, connections: int) -> None:
    import aiohttp

    left = count
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, failures
        while left > 0:
            left -= 1
            async with session.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    if failures:
        raise SystemExit(f"{failures} of {count} requests failed")


def _send(url: str, count: int, connections: int = 32) -> None:
    subprocess.run(
        [sys.executable, "-m", _MODULE, "--child", "requests", url, str(count), str(connections)],
        env=bench_gateway._child_env(),
        check=True,
        timeout=600,
    )


def _callgrind_control(*args: str | int) -> None:
    subprocess.run(
        ["callgrind_control", *map(str, args)], check=True, capture_output=True, timeout=120
    )


def _callgrind_total(prefix: str) -> int:
    """Instructions counted in every dump file of one run."""
    total = 0
    for path in glob.glob(prefix + "*"):
        with open(path) as f:
            for line in f:
                if line.startswith("totals:"):
                    total += int(line.split()[1])
    return total


def callgrind_process(
    out: str,
    argv: Sequence[str],
    *,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> "subprocess.Popen[str]":
    """``argv`` (a Python child, run by ``python``) under callgrind, counting nothing until
    switched on, its counts written to ``out``; stdout piped for its ``READY`` line."""
    return subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            python,
            *argv,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=bench_gateway._child_env() if env is None else env,
    )


def _collected(collector: str) -> int:
    """Spans the benchmark's collector has received so far."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{collector}/stats", timeout=10) as resp:  # noqa: S310
        return int(json.loads(resp.read())["spans"])


def _wait_delivered(collector: str, expected: int, mode: str, timeout: float = 900.0) -> None:
    """Until the collector holds ``expected`` spans; the run fails if it never does (or
    gets more: then it measured other work too)."""
    import time

    deadline = time.monotonic() + timeout
    while (got := _collected(collector)) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"{mode}: {got} of {expected} traced spans reached the collector")
        time.sleep(0.5)
    if got != expected:
        raise SystemExit(f"{mode}: the collector got {got} spans, {expected} were traced")


def measure_mode(
    mode: str, upstream: str, collector: str, requests: int, warmup: int, keep: str | None = None
) -> float:
    """Thousand instructions per request of one gateway mode; ``keep``: a directory where
    the callgrind files stay (``callgrind_annotate`` them for the C-level hot spots)."""
    delivered = mode.startswith("100%") and "no reporter" not in mode and "down" not in mode
    return measure_proxy(
        mode,
        [bench_gateway.__file__, "--child", "gateway", upstream, mode, collector],
        collector,
        2 if delivered else 0,
        requests,
        warmup,
        keep,
    )


def measure_proxy(
    label: str,
    argv: Sequence[str],
    collector: str,
    spans_per_request: int,
    requests: int,
    warmup: int,
    keep: str | None = None,
    *,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> float:
    """Thousand instructions per request of one proxy process (``python argv`` printing
    ``READY <port>``) under callgrind: ``warmup`` requests uncounted, then ``requests``
    counted, every one checked to answer 200 (the load generator fails otherwise).
    ``spans_per_request`` > 0: every request is traced and sends that many spans to
    ``collector``; counting goes on until the collector holds every span traced (warm-up
    included, their export may fall in the counted window), so encoding and sending them
    is counted, and the run fails if the collector receives more or fewer."""
    with tempfile.TemporaryDirectory(prefix="gatetrace-callgrind-") as tmp:
        name = re.sub(r"[^a-z0-9]+", "-", label.lower().replace("%", "pct")).strip("-")
        if keep:
            os.makedirs(keep, exist_ok=True)
        out = os.path.join(keep or tmp, f"callgrind.{name}.out")
        proxy = callgrind_process(out, argv, python=python, env=env)
        try:
            assert proxy.stdout is not None
            line = proxy.stdout.readline()
            match = re.match(r"READY (\d+)", line)
            if match is None:
                raise RuntimeError(f"{label!r} did not start: {line!r}")
            url = f"http://127.0.0.1:{match.group(1)}{bench_gateway.PATH}"
            before = _collected(collector) if spans_per_request else 0
            _send(url, warmup)
            _callgrind_control("-i", "on", proxy.pid)
            _send(url, requests)
            if spans_per_request:
                expected = before + spans_per_request * (warmup + requests)
                _wait_delivered(collector, expected, label)
            _callgrind_control("-i", "off", proxy.pid)
            _callgrind_control("-d", proxy.pid)
        finally:
            proxy.terminate()
            proxy.wait(timeout=120)
        return _callgrind_total(out) / requests / 1e3


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--child":
        if args[1] != "requests":
            raise SystemExit(f"unknown child {args[1]!r}")
        asyncio.run(_requests(args[2], int(args[3]), int(args[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--modes", default="off;1%;1%, priority;100%")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    options = parser.parse_args(args)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind and callgrind_control (Debian: apt-get install valgrind)")
    chosen = [m.strip() for m in options.modes.split(";") if m.strip()]
    unknown = set(chosen) - set(bench_gateway.MODES + bench_gateway.EXTRA_MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    if "off" in chosen:
        chosen.remove("off")
    chosen.insert(0, "off")
    print(f"gateway instructions per request: {options.requests} requests per mode (callgrind)")
    print(f"{'mode':<22}{'k instr/req':>12}{'vs off':>8}{'goal':>7}")
    with bench_gateway.children() as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        down = f"http://127.0.0.1:{bench_gateway._free_port()}"
        base = 0.0
        for mode in chosen:
            sink = down if "down" in mode else collector
            cost = measure_mode(
                mode, upstream, sink, options.requests, options.warmup, options.keep
            )
            base = base or cost
            goal = GOALS.get(mode.split(",")[0])
            ratio = base / cost
            verdict = "" if goal is None else ("  ok" if ratio >= goal else "  BELOW GOAL")
            goal_text = "" if goal is None else f">={goal:.2f}"
            print(f"{mode:<22}{cost:>12.1f}{ratio:>8.3f}{goal_text:>7}{verdict}", flush=True)


if __name__ == "__main__":
    main()
