"""Operator benchmarks.

1. Rollout latency, standalone mode: 200 real gateway admin endpoints on
   127.0.0.1 (4 worker processes x 50 admin apps each, the gateway package's
   own admin app). Time from a policy change to all 200 applied, over
   repeated changes (p50/p99). Peer: the same 200 PUTs of the same document
   sent by a bare aiohttp client in the same run (the transport floor), so
   the ratio is the reconciler's overhead over the wire itself.
2. Memory: RSS of a fresh process tracking 1,000 policies and 500 pods
   (planned, statuses computed), against a fresh process that only imports
   the same modules. Goal: under 150 MB.
"""

import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ENDPOINTS = 200
PROCESSES = 4
CHANGES = 15
TOKEN = "bench-token"  # noqa: S105 -- a throwaway token for loopback servers

_SERVER = r"""
import asyncio, sys
from aiohttp import web
from gatetrace.gateway import admin, config, state, store
from gatetrace.runtime import metrics

async def main(count):
    runners = []
    for _ in range(count):
        app = admin.make_admin_app(config.GatewayConfig(), state.TracingHolder(),
                                   store.SpanStore(max_spans=100), metrics.Registry(), sys.argv[2])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
    print(" ".join(str(r.addresses[0][1]) for r in runners), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main(int(sys.argv[1])))
"""

_POLICY = """\
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {{name: team, namespace: default}}
spec:
  sampling:
    sampler: {{type: probabilistic, rate: {rate}}}
"""


def _start_servers() -> tuple[list[subprocess.Popen[str]], list[str]]:
    procs = []
    urls: list[str] = []
    for _ in range(PROCESSES):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(ENDPOINTS // PROCESSES), TOKEN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        urls.extend(f"http://127.0.0.1:{port}" for port in line.split())
    return procs, urls


async def _rollouts(urls: list[str]) -> tuple[list[float], list[float]]:
    import aiohttp

    from gatetrace.operator import core, delivery, planner, standalone

    folder_path = pathlib.Path(tempfile.mkdtemp(prefix="gt-bench-"))
    client = delivery.AdminClient(lambda: TOKEN, connector_limit=256)
    pusher = delivery.Pusher(client, concurrency=64, retry=delivery.RetryPolicy(attempts=3))
    reconciler = core.Reconciler(
        standalone.FileSink(), pusher, planner.IndexPlanner("gatetrace-system")
    )
    for i, url in enumerate(urls):
        reconciler.upsert_pod(standalone.GatewaySpec(f"gw{i:03d}", url).pod())
    folder = standalone.PolicyFolder(folder_path)
    ours: list[float] = []
    for change in range(CHANGES + 1):
        (folder_path / "team.yaml").write_text(_POLICY.format(rate=0.01 + change / 100))
        started = time.perf_counter()
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        elapsed = time.perf_counter() - started
        applied = sum(1 for s in reconciler.pod_states.values() if s.state == "Applied")
        if applied != len(urls):
            raise RuntimeError(f"only {applied}/{len(urls)} applied")
        if change:  # the first one warms connections up
            ours.append(elapsed)
    await client.close()
    # the peer: the same PUTs, bare
    any_plan = next(iter(reconciler.plans.values()))
    body = json.dumps({"revision": 10_000, "config": any_plan.config})
    bare: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        semaphore = asyncio.Semaphore(64)

        async def put(url: str, revision: int) -> None:
            payload = body.replace("10000", str(revision), 1)
            async with (
                semaphore,
                session.put(url + "/admin/v1/tracing", data=payload, headers=headers) as response,
            ):
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"bare PUT answered {response.status}")

        for change in range(CHANGES + 1):
            started = time.perf_counter()
            await asyncio.gather(*(put(u, 10_000 + change) for u in urls))
            if change:
                bare.append(time.perf_counter() - started)
    return ours, bare


_MEMORY = r"""
import sys, resource
from gatetrace.operator import core, delivery, planner, pods, records, conditions
from gatetrace.policy import model
if sys.argv[1] == "full":
    import asyncio
    class Sink:
        async def load_revision(self, g): return None
        async def store_config(self, *a, **k): pass
        async def publish_status(self, ref, status): pass
        async def emit_event(self, *a): pass
    reconciler = core.Reconciler(Sink(), delivery.Pusher(delivery.AdminClient(lambda: "t")),
                                 planner.IndexPlanner("gatetrace-system"))
    for i in range(1000):
        ns = f"ns{i % 50:02d}"
        spec = {"sampling": {"sampler": {"type": "probabilistic", "rate": (i % 100) / 100}}}
        if i % 4:
            spec["selector"] = {"matchLabels": {"app": f"gw{i % 10}"}}
        spec["tags"] = {"team": f"t{i}"}
        reconciler.upsert_policy(records.record_from_object({
            "apiVersion": "gatetrace.dev/v1alpha1", "kind": "TracingPolicy",
            "metadata": {"name": f"p{i}", "namespace": ns, "generation": 1,
                         "creationTimestamp": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"},
            "spec": spec}))
    for i in range(500):
        reconciler.upsert_pod(pods.GatewayTarget(f"ns{i % 50:02d}", f"pod{i}", f"gw{i % 10}",
                              {"gatetrace.dev/gateway": f"gw{i % 10}", "app": f"gw{i % 10}"},
                              None, ready=False))
    asyncio.run(reconciler.converge())
    assert len(reconciler.plans) == 500
with open("/proc/self/status") as f:
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
print(rss / 1024)
"""


def _rss(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run() -> list[common.Row]:
    procs, urls = _start_servers()
    try:
        ours, bare = asyncio.run(_rollouts(urls))
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
    full, baseline = _rss("full"), _rss("imports")
    p99, bare_p99 = _p(ours, 0.99), _p(bare, 0.99)
    return [
        common.Row(
            f"policy change -> {ENDPOINTS} applied, p99 (p50 {statistics.median(ours):.3f})",
            p99,
            bare_p99,
            unit="s",
            goal_ratio=3.0,
            peer_name="the same 200 PUTs sent by a bare aiohttp client",
        ),
        common.Row(
            f"rollout p99 against the 2 s target ({ENDPOINTS} gateways)",
            p99,
            2.0,
            unit="s",
            goal_ratio=1.0,
            peer_name="target",
        ),
        common.Row(
            f"RSS, 1,000 policies / 500 pods (bare imports: {baseline:.0f} MB)",
            full,
            150.0,
            unit="MB",
            goal_ratio=1.0,
            peer_name="target 150 MB",
        ),
    ]


def main() -> None:
    for row in run():
        print(
            f"{row.name}: ours {row.ours:.3f} {row.unit}, {row.peer_name} {row.peer:.3f}, "
            f"ratio {row.ratio:.2f} (goal <= {row.goal_ratio:g}) {'ok' if row.met else 'MISSED'}"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
