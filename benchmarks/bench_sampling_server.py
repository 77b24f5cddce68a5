"""The operator's Jaeger remote sampling API under load, against the real Jaeger v2 serving
the same strategies from a file (its ``remote_sampling`` extension).

1,000 TracingPolicies (500 of them naming one service each, two operations apiece) plus a
cluster default are served by a real ``gatetrace operator --standalone --sampling-listen``
process; Jaeger serves the equivalent strategies file. Each server is pinned to CPU 0
(Jaeger with ``GOMAXPROCS=1``), the load generator (aiohttp, 16 keep-alive connections,
random services) to the other CPU. Rounds alternate between the two servers; every answer
must be a 200 whose JSON equals the expected strategy (checked for every response), or the
run fails. Rows: microseconds of server time per request (1e6 / requests per second) and
the p99 latency, ours against Jaeger's; the absolute figures are in the row names (goal
of issue 17: >= 2,000 requests/s on one core, p99 < 5 ms).
"""

import asyncio
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import yaml

from benchmarks import common

REPO = pathlib.Path(__file__).resolve().parents[1]
SERVICES = 500
POLICIES = 1000
ROUNDS = 3
SECONDS = 3.0
CONNECTIONS = 16
PACED_RATE = 200
"""Requests/s of the paced probe: one connection, a fleet's polls spread in time (500
services x 24 instances polling every minute), so its p99 is service time, not queueing."""


def _peers() -> Any:
    sys.path.insert(0, str(REPO / "e2e"))
    from peers import cache, procs

    return cache, procs


def _service(i: int) -> dict[str, Any]:
    return {
        "name": f"svc-{i}",
        "sampler": {"type": "probabilistic", "rate": round((i % 100) / 100, 2)},
        "operations": [
            {"operation": "GET /health", "probability": 0},
            {"operation": f"POST /op-{i}", "probability": 1},
        ],
    }


def _jaeger_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "service": entry["name"],
        "type": "probabilistic",
        "param": entry["sampler"]["rate"],
        "operation_strategies": [
            {"operation": o["operation"], "type": "probabilistic", "param": o["probability"]}
            for o in entry["operations"]
        ],
    }


def _expected(entry: dict[str, Any]) -> dict[str, Any]:
    rate = entry["sampler"]["rate"]
    return {
        "strategyType": 0,
        "probabilisticSampling": {"samplingRate": rate},
        "operationSampling": {
            "defaultSamplingProbability": rate,
            "defaultLowerBoundTracesPerSecond": 0,
            "perOperationStrategies": [
                {
                    "operation": o["operation"],
                    "probabilisticSampling": {"samplingRate": o["probability"]},
                }
                for o in entry["operations"]
            ],
            "defaultUpperBoundTracesPerSecond": 0,
        },
    }


def _write_inputs(workdir: pathlib.Path) -> list[dict[str, Any]]:
    policies = workdir / "policies"
    policies.mkdir()
    entries = [_service(i) for i in range(SERVICES)]
    docs = [
        {
            "apiVersion": "gatetrace.dev/v1alpha1",
            "kind": "TracingPolicy",
            "metadata": {"name": "default", "namespace": "gatetrace-system"},
            "spec": {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.05}}},
        }
    ]
    for i in range(POLICIES):
        spec: dict[str, Any] = {"tags": {"team": f"t{i}"}}
        if i < SERVICES:
            spec["services"] = [entries[i]]
        docs.append(
            {
                "apiVersion": "gatetrace.dev/v1alpha1",
                "kind": "TracingPolicy",
                "metadata": {"name": "p", "namespace": f"ns-{i}"},
                "spec": spec,
            }
        )
    (policies / "all.yaml").write_text(yaml.safe_dump_all(docs))
    strategies = {
        "service_strategies": [_jaeger_entry(e) for e in entries],
        "default_strategy": {"type": "probabilistic", "param": 0.05},
    }
    (workdir / "strategies.json").write_text(json.dumps(strategies))
    return entries


def _pin(cpu: int) -> Any:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
            os.sched_setaffinity(0, {cpu})

    return pin


class _Servers:
    def __init__(self, workdir: pathlib.Path) -> None:
        cache, procs = _peers()
        self.procs = procs
        self.ours_port, self.jaeger_port = procs.free_tcp_port(), procs.free_tcp_port()
        jaeger = cache.artifact("jaeger", "JAEGER_VERSION", "bin/jaeger")
        grpc, otlp = procs.free_tcp_port(), procs.free_tcp_port()
        config = {
            "service": {
                "extensions": ["jaeger_storage", "remote_sampling"],
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
                },
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "error"}},
            },
            "extensions": {
                "jaeger_storage": {"backends": {"mem": {"memory": {"max_traces": 10}}}},
                "remote_sampling": {
                    "file": {"path": str(workdir / "strategies.json")},
                    "http": {"endpoint": f"127.0.0.1:{self.jaeger_port}"},
                    "grpc": {"endpoint": f"127.0.0.1:{grpc}"},
                },
            },
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp}"}}}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "mem"}},
        }
        (workdir / "jaeger.yaml").write_text(yaml.safe_dump(config))
        gatetrace = pathlib.Path(sys.executable).with_name("gatetrace")
        env = dict(os.environ, GOMAXPROCS="1")
        env["GATETRACE_ADMIN_TOKEN"] = os.urandom(8).hex()
        log = (workdir / "servers.log").open("ab")
        self.processes = [
            subprocess.Popen(
                [
                    str(gatetrace),
                    "operator",
                    f"--standalone={workdir / 'policies'}",
                    f"--sampling-listen=127.0.0.1:{self.ours_port}",
                    "--metrics-listen=",
                ],
                env=env,
                stdout=log,
                stderr=log,
                preexec_fn=_pin(0),
            ),
            subprocess.Popen(
                [str(jaeger), "--config", str(workdir / "jaeger.yaml")],
                env=env,
                stdout=log,
                stderr=log,
                preexec_fn=_pin(0),
            ),
        ]

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def _ready(url: str, expected: dict[str, Any]) -> None:
    deadline = time.monotonic() + 90
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200 and await resp.json() == expected:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} never served the expected strategy")


async def _checked_get(
    http: aiohttp.ClientSession,
    base: str,
    entry: dict[str, Any],
    expected: dict[str, dict[str, Any]],
) -> float:
    """One strategy request; its latency in seconds, or RuntimeError for a wrong answer."""
    started = time.perf_counter()
    async with http.get(f"{base}/sampling?service={entry['name']}") as resp:
        body = await resp.read()
    latency = time.perf_counter() - started
    if resp.status != 200 or json.loads(body) != expected[entry["name"]]:
        raise RuntimeError(f"{base}: wrong answer for {entry['name']}: {body[:200]!r}")
    return latency


async def _load(base: str, entries: list[dict[str, Any]]) -> tuple[int, list[float]]:
    """Requests for ``SECONDS``; every answer checked against its expected JSON."""
    expected = {e["name"]: _expected(e) for e in entries}
    latencies: list[float] = []
    stop = time.monotonic() + SECONDS
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < stop:
                entry = entries[rng.randrange(len(entries))]
                latencies.append(await _checked_get(http, base, entry, expected))

        await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
    return len(latencies), latencies


async def _paced(base: str, entries: list[dict[str, Any]]) -> list[float]:
    """``PACED_RATE`` requests/s on one connection for ``SECONDS``; latencies, answers checked."""
    expected = {e["name"]: _expected(e) for e in entries}
    rng = random.Random(7)
    latencies: list[float] = []
    interval = 1.0 / PACED_RATE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as http:
        start = time.monotonic()
        for i in range(int(SECONDS * PACED_RATE)):
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
            entry = entries[rng.randrange(len(entries))]
            latencies.append(await _checked_get(http, base, entry, expected))
    return latencies


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _rounds(workdir: pathlib.Path) -> Iterator[tuple[str, float, float, float]]:
    entries = _write_inputs(workdir)
    servers = _Servers(workdir)
    _pin(1)()
    try:
        ours = f"http://127.0.0.1:{servers.ours_port}"
        jaeger = f"http://127.0.0.1:{servers.jaeger_port}"
        probe = entries[-1]
        for base in (ours, jaeger):
            asyncio.run(_ready(f"{base}/sampling?service={probe['name']}", _expected(probe)))
        for round_ in range(ROUNDS):
            order = [("ours", ours), ("jaeger", jaeger)]
            for who, base in order if round_ % 2 == 0 else order[::-1]:
                count, latencies = asyncio.run(_load(base, entries))
                paced = asyncio.run(_paced(base, entries))
                yield who, count / SECONDS, _p99(latencies), _p99(paced)
    finally:
        servers.close()


def run() -> list[common.Row]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    try:
        results: dict[str, list[tuple[float, float]]] = {"ours": [], "jaeger": []}
        paced: dict[str, list[float]] = {"ours": [], "jaeger": []}
        for who, rps, p99, paced_p99 in _rounds(workdir):
            results[who].append((rps, p99))
            paced[who].append(paced_p99)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ours_rps = max(r for r, _ in results["ours"])
    peer_rps = max(r for r, _ in results["jaeger"])
    ours_p99 = min(p for _, p in results["ours"])
    peer_p99 = min(p for _, p in results["jaeger"])
    spread = ", ".join(f"{r:.0f}" for r, _ in results["ours"])
    return [
        common.Row(
            f"remote sampling: us/request, 1 core ({ours_rps:.0f} req/s; rounds {spread})",
            1e6 / ours_rps,
            1e6 / peer_rps,
            goal_ratio=4.0,
            peer_name=f"Jaeger v2 remote_sampling ({peer_rps:.0f} req/s)",
        ),
        common.Row(
            f"remote sampling: p99 at {CONNECTIONS} connections (ours {ours_p99 * 1e3:.1f} ms)",
            ours_p99 * 1e3,
            peer_p99 * 1e3,
            unit="ms",
            goal_ratio=4.0,
            peer_name="Jaeger v2 remote_sampling",
        ),
        common.Row(
            f"remote sampling: p99 paced at {PACED_RATE} req/s, 1 connection"
            f" (ours {min(paced['ours']) * 1e3:.2f} ms; issue goal < 5 ms)",
            min(paced["ours"]) * 1e3,
            min(paced["jaeger"]) * 1e3,
            unit="ms",
            goal_ratio=4.0,
            peer_name="Jaeger v2 remote_sampling",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.name}: ours {row.ours:.1f}, peer {row.peer:.1f} {row.unit} ({row.ratio:.2f})")
