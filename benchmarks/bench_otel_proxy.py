"""Tracing's added instructions per request: our gateway against an OpenTelemetry proxy.

The peer is an aiohttp reverse proxy (``benchmarks/otel_proxy.py``: a plain
aiohttp app forwarding GET upstream through one ``ClientSession``) traced the
way an aiohttp service is traced with OpenTelemetry: the SDK's
``TracerProvider`` with ``ParentBased(TraceIdRatioBased(r))``, the
opentelemetry-instrumentation-aiohttp-server and -aiohttp-client
instrumentations (a SERVER and a CLIENT span per request), a
``BatchSpanProcessor`` and the Zipkin JSON or the OTLP/HTTP protobuf exporter.
It runs in its own venv (``benchmarks.otel_venv``: pinned OpenTelemetry
1.27.0 / contrib 0.48b0 and the aiohttp version we run, built once under
``~/.cache/gatetrace-bench``), so the project's dependencies stay unchanged.
Its baseline is the same proxy without OpenTelemetry (``bare``).

Both are measured the same way as ``benchmarks.gateway_instructions``: under
``valgrind --tool=callgrind``, counting only while a fixed number of requests
goes through (after a warm-up), with the same upstream, the same span
collector and the same load generator (keep-alive aiohttp clients), each a
separate process on 127.0.0.1. Our gateway sends the same format to the same
collector, uncompressed as OpenTelemetry's exporters do (``gzip: false``).
Runs alternate: ours off, peer bare, ours 1%, peer 1%, ...

Every run checks it measured what it claims: every request answered 200,
and at 100% the collector received every span traced (2 per request on both
sides, warm-up included): counting goes on until it holds them all, so
encoding and sending them is counted, and the run fails if it gets more or
fewer. Queues and export timeouts are sized for callgrind's ~50x slowdown.

Rows: added k instructions per request (mode minus our ``off``; the peer's
mode minus ``bare``) and their ratio. Goal: ours <= 0.15x OpenTelemetry's at
1% and at 100%. Instruction counts are steady from run to run, so these rows
carry verdicts (wall-clock rows do not).

Alone: ``.venv/bin/python -m benchmarks.bench_otel_proxy [--requests N]
[--warmup N] [--rounds N] [--cases '1%, zipkin;100%, zipkin;...'] [--keep DIR]``.
Needs valgrind and PyPI access the first time (to build the peer venv).
"""

import argparse
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks import bench_gateway, common, gateway_instructions, otel_venv

GOAL = 0.15
PEER = f"OpenTelemetry {otel_venv.OTEL} / contrib {otel_venv.CONTRIB} aiohttp proxy"
GATEWAY = bench_gateway.__file__
PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otel_proxy.py")


@dataclass(frozen=True)
class Case:
    """One traced setting, as our gateway's mode and the peer proxy's."""

    name: str
    ours: str
    """Our gateway's mode (``bench_gateway._tracing_document``)."""
    peer: str
    """The peer's mode (``otel_proxy.py``: ``rate,exporter``)."""
    spans_per_request: int
    """Spans each request sends to the collector (0: not checked, the sampler decides)."""


BASELINE = Case("off", "off", "bare", 0)
CASES = (
    Case("1%, zipkin", "1%, no gzip", "0.01,zipkin", 0),
    Case("100%, zipkin", "100%, no gzip", "1.0,zipkin", 2),
    Case("1%, otlp", "1%, otlp, no gzip", "0.01,otlp", 0),
    Case("100%, otlp", "100%, otlp, no gzip", "1.0,otlp", 2),
)


@dataclass(frozen=True)
class Result:
    """K instructions per request of one case: ours and the peer's (median of rounds)."""

    case: Case
    ours: float
    peer: float
    ours_rounds: tuple[float, ...]
    peer_rounds: tuple[float, ...]


def _peer_env() -> dict[str, str]:
    """This environment without PYTHONPATH (the peer venv's packages only) or HTTP proxies
    (the exporters use requests, which would honour them)."""
    drop = {"PYTHONPATH", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    return {k: v for k, v in os.environ.items() if k.upper() not in drop}


def measure(
    cases: Sequence[Case] = CASES,
    requests: int = 3000,
    warmup: int = 600,
    rounds: int = 1,
    keep: str | None = None,
) -> list[Result]:
    """The baseline and every case, ours and the peer's alternating, ``rounds`` times."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("needs valgrind and callgrind_control (apt-get install valgrind)")
    peer_python = otel_venv.python()
    everything = [BASELINE, *cases]
    ours: dict[str, list[float]] = {c.name: [] for c in everything}
    peer: dict[str, list[float]] = {c.name: [] for c in everything}
    with bench_gateway.children() as procs:
        upstream = f"http://127.0.0.1:{procs.start('upstream')}"
        collector = f"http://127.0.0.1:{procs.start('collector')}"
        for r in range(rounds):
            for case in everything:
                suffix = f" r{r}" if rounds > 1 else ""
                ours[case.name].append(
                    gateway_instructions.measure_proxy(
                        f"ours {case.name}{suffix}",
                        [GATEWAY, "--child", "gateway", upstream, case.ours, collector],
                        collector,
                        case.spans_per_request,
                        requests,
                        warmup,
                        keep,
                    )
                )
                peer[case.name].append(
                    gateway_instructions.measure_proxy(
                        f"otel {case.name}{suffix}",
                        [PROXY, upstream, case.peer, collector],
                        collector,
                        case.spans_per_request,
                        requests,
                        warmup,
                        keep,
                        python=peer_python,
                        env=_peer_env(),
                    )
                )
    return [
        Result(
            c,
            statistics.median(ours[c.name]),
            statistics.median(peer[c.name]),
            tuple(ours[c.name]),
            tuple(peer[c.name]),
        )
        for c in everything
    ]


def rows(results: Sequence[Result]) -> list[common.Row]:
    """One row per traced case: added k instructions per request, ours vs the peer's."""
    base = results[0]
    out = []
    for result in results[1:]:
        out.append(
            common.Row(
                name=(
                    f"added k instr/request at {result.case.name} (ours {result.ours:.0f}k "
                    f"- off {base.ours:.0f}k; OTel {result.peer:.0f}k - bare {base.peer:.0f}k)"
                ),
                ours=result.ours - base.ours,
                peer=result.peer - base.peer,
                unit="k instr",
                goal_ratio=GOAL,
                peer_name=PEER,
            )
        )
    return out


RUN_REQUESTS = 600
RUN_WARMUP = 200
"""What ``run()`` sends per process: fewer than ``main()``'s default (3,000 after 600),
as ``make bench`` runs every module; the added counts move by a few percent."""


def run() -> list[common.Row]:
    """The ``python -m benchmarks`` rows (10 callgrind runs, ~3 min)."""
    return rows(measure(CASES, requests=RUN_REQUESTS, warmup=RUN_WARMUP))


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else ""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--cases",
        default=";".join(c.name for c in CASES),
        # (argparse %-formats help texts: the case names' % doubled)
        help=f"';'-separated subset of: {'; '.join(c.name for c in CASES)}".replace("%", "%%"),
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    by_name = {c.name: c for c in CASES}
    chosen = [n.strip() for n in options.cases.split(";") if n.strip()]
    unknown = set(chosen) - set(by_name)
    if unknown:
        parser.error(f"unknown cases: {sorted(unknown)}")
    print(
        f"k instructions per request (callgrind), {options.requests} requests after "
        f"{options.warmup}, {options.rounds} round(s); peer: {PEER}"
    )
    results = measure(
        [by_name[n] for n in chosen],
        options.requests,
        options.warmup,
        options.rounds,
        options.keep,
    )
    print(f"{'case':<14}{'ours':>8}{'OTel':>8}{'ours +':>9}{'OTel +':>9}{'ratio':>7}{'goal':>8}")
    base = results[0]
    print(f"{'off / bare':<14}{base.ours:>8.1f}{base.peer:>8.1f}")
    for result, row in zip(results[1:], rows(results), strict=True):
        verdict = "ok" if row.met else "MISSED"
        print(
            f"{result.case.name:<14}{result.ours:>8.1f}{result.peer:>8.1f}{row.ours:>9.1f}"
            f"{row.peer:>9.1f}{row.ratio:>7.3f}{'<=' + format(GOAL, 'g'):>8}  {verdict}"
        )
    if options.rounds > 1:
        for result in results:
            print(
                f"  {result.case.name}: ours {_spread(result.ours_rounds)}, "
                f"OTel {_spread(result.peer_rounds)} (min-max over rounds)"
            )
    print(
        "ours +: our mode minus our untraced gateway; OTel +: the instrumented proxy minus "
        "the bare one; ratio = ours + / OTel +."
    )


if __name__ == "__main__":
    main()
