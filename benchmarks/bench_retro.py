"""A kit-managed service's cost per request in CPU instructions, by trace state, one run.

The service (an aiohttp app with :func:`gatetrace.embed.aiohttp_middleware` and a traced
client session making one downstream call per request, so two spans per request) runs
under ``valgrind --tool=callgrind``, counting only while a fixed number of requests goes
through it (after a warm-up). The downstream and the Zipkin-like collector are
``bench_gateway``'s child processes; the load generator is another process. Modes, by what
the incoming request carries:

- ``off``: no tracing config loaded (the middleware's untraced path): the baseline;
- ``unsampled``: ``traceparent ...-00``, no mark: nothing recorded;
- ``pending``: ``traceparent ...-00`` and ``tracestate: gt=p``: both spans recorded into
  the retro buffer (default bounds: 16 MiB, 30 s), breadcrumb header answered;
- ``sampled``: ``traceparent ...-01``: both spans recorded and exported (zipkin reporter).

Goal: pending's overhead over ``off`` is at most 0.5x sampled's. Each measurement checks
the service's ``/metrics`` afterwards: the spans it claims to have buffered or exported.
``--demo`` also runs ``gatetrace demo`` with retro collection off and on and prints the
spans of its error trace (2 before: the gateway's own; every hop after).

Usage: ``.venv/bin/python -m benchmarks.bench_retro [--requests N] [--rounds N] [--demo]
[--keep DIR]``.
"""

import argparse
import asyncio
import glob
import os
import pathlib
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from benchmarks import bench_gateway, gateway_instructions

MODES = ("off", "unsampled", "pending", "sampled")
GOAL = 0.5
_TOKEN = "bench-token"  # noqa: S105 -- a local benchmark's token
_TRACE = "0af7651916cd43dd8448eb211c80319c"
_HEADERS: dict[str, dict[str, str]] = {
    "off": {"traceparent": f"00-{_TRACE}-b7ad6b7169203331-00"},
    "unsampled": {"traceparent": f"00-{_TRACE}-b7ad6b7169203331-00"},
    "pending": {"traceparent": f"00-{_TRACE}-b7ad6b7169203331-00", "tracestate": "gt=p"},
    "sampled": {"traceparent": f"00-{_TRACE}-b7ad6b7169203331-01"},
}


def _config(collector: str) -> dict[str, Any]:
    return {
        "sampling": {"sampler": {"type": "const", "decision": False}, "parentBased": True},
        "reporters": [{"type": "zipkin", "endpoint": f"{collector}/api/v2/spans"}],
    }


async def _serve_service(mode: str, downstream: str, collector: str) -> None:
    import aiohttp
    from aiohttp import web

    from gatetrace import embed

    kit = embed.Kit("bench-service", token=_TOKEN)
    if mode != "off":
        await kit.apply(_config(collector))
    admin = embed.AdminServer(kit, "127.0.0.1", 0)
    await admin.start()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def handle(request: web.Request) -> web.Response:
        async with request.app[session_key].get(downstream + bench_gateway.PATH) as answer:
            body = await answer.read()
        return web.Response(body=body, content_type="application/json")

    async def session(app: web.Application) -> Any:
        app[session_key] = aiohttp.ClientSession(trace_configs=[embed.aiohttp_trace_config(kit)])
        yield
        await app[session_key].close()

    app = web.Application(middlewares=[embed.aiohttp_middleware(kit)])
    app.cleanup_ctx.append(session)
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"READY {runner.addresses[0][1]} {admin.port}", flush=True)
    await asyncio.Event().wait()


async def _send(url: str, count: int, headers: dict[str, str], connections: int = 16) -> None:
    import aiohttp

    left = count
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, failures
        while left > 0:
            left -= 1
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                failures += resp.status != 200

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    if failures:
        raise SystemExit(f"{failures} of {count} requests failed")


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _check(mode: str, metrics: str, sent: int) -> None:
    """The work the mode claims: spans buffered (pending) or exported (sampled), else none."""
    buffered = _metric(metrics, "gatetrace_retro_spans_buffered_total")
    exported = _metric(metrics, "gatetrace_spans_sampled_total")
    want_buffered = 2 * sent if mode == "pending" else 0
    want_exported = 2 * sent if mode == "sampled" else 0
    if buffered < want_buffered or exported < want_exported:
        raise SystemExit(f"{mode}: buffered {buffered}, exported {exported} for {sent} requests")
    if (mode != "pending" and buffered) or (mode != "sampled" and exported):
        raise SystemExit(
            f"{mode}: did work it should not: buffered {buffered}, exported {exported}"
        )


def measure(
    mode: str,
    downstream: str,
    collector: str,
    requests: int,
    warmup: int,
    keep: str | None = None,
) -> float:
    """Thousand instructions per request of the service in ``mode``; ``keep``: a directory
    where the callgrind files stay (``callgrind_annotate`` them for the C-level hot spots)."""
    import urllib.request

    with tempfile.TemporaryDirectory(prefix="gatetrace-retro-") as tmp:
        if keep:
            os.makedirs(keep, exist_ok=True)
        out = os.path.join(keep or tmp, f"callgrind.{mode}.out")
        for stale in glob.glob(out + "*"):  # an earlier round's: not to be counted again
            os.remove(stale)
        service = gateway_instructions.callgrind_process(
            out, ["-m", "benchmarks.bench_retro", "--child", mode, downstream, collector]
        )
        try:
            assert service.stdout is not None
            match = re.match(r"READY (\d+) (\d+)", service.stdout.readline())
            if match is None:
                raise RuntimeError(f"service {mode!r} did not start")
            url = f"http://127.0.0.1:{match.group(1)}{bench_gateway.PATH}"
            headers = _HEADERS[mode]
            asyncio.run(_send(url, warmup, headers))
            gateway_instructions._callgrind_control("-i", "on", service.pid)
            asyncio.run(_send(url, requests, headers))
            gateway_instructions._callgrind_control("-i", "off", service.pid)
            gateway_instructions._callgrind_control("-d", service.pid)
            admin = f"http://127.0.0.1:{match.group(2)}/metrics"
            with urllib.request.urlopen(admin, timeout=60) as answer:
                _check(mode, answer.read().decode(), warmup + requests)
        finally:
            service.terminate()
            service.wait(timeout=120)
        return gateway_instructions._callgrind_total(out) / requests / 1e3


def demo_spans(retro: bool) -> int:
    """Spans of the error trace ``gatetrace demo`` shows, with retro collection on or off."""
    from gatetrace.demo import run as demo

    with tempfile.TemporaryDirectory(prefix="gatetrace-retro-demo-") as tmp:
        policies = shutil.copytree(demo.POLICIES, os.path.join(tmp, "policies"))
        if not retro:  # the cluster default turns it off
            default = pathlib.Path(policies) / "00-cluster-default.yaml"
            text = default.read_text().rstrip("\n")
            default.write_text(text + "\n  retro: {enabled: false}\n")
        options = demo.DemoOptions(requests=200, seed=7, policies=pathlib.Path(policies))
        with open(os.devnull, "w") as sink:
            summary = asyncio.run(demo.run_demo(options, sink))
    return int(summary.get("error_trace_spans", 0))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--child":
        asyncio.run(_serve_service(args[1], args[2], args[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best kept)")
    parser.add_argument("--demo", action="store_true", help="also count demo error-trace spans")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    options = parser.parse_args(args)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind and callgrind_control (Debian: apt-get install valgrind)")
    print(f"service instructions per request: {options.requests} requests per mode (callgrind)")
    best: dict[str, float] = {}
    with bench_gateway.children() as procs:
        downstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        for _round in range(options.rounds):
            for mode in MODES:
                cost = measure(
                    mode, downstream, collector, options.requests, options.warmup, options.keep
                )
                best[mode] = min(best.get(mode, cost), cost)
                print(f"  round {_round + 1}: {mode:<10}{cost:>10.1f} k instr/req", flush=True)
    base = best["off"]
    print(f"{'mode':<12}{'k instr/req':>12}{'overhead':>10}")
    for mode in MODES:
        print(f"{mode:<12}{best[mode]:>12.1f}{best[mode] - base:>10.1f}")
    ratio = (best["pending"] - base) / (best["sampled"] - base)
    verdict = "ok" if ratio <= GOAL else "ABOVE GOAL"
    print(
        f"pending overhead / sampled-with-export overhead: {ratio:.2f} (goal <= {GOAL}) {verdict}"
    )
    if options.demo:
        before, after = demo_spans(False), demo_spans(True)
        print(f"demo error trace: {before} spans without retro collection, {after} with it")


if __name__ == "__main__":
    main()
