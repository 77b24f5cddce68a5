"""``gatetrace demo``: a gateway and traced demo services on 127.0.0.1, the
demo policies applied through the standalone reconciler (the operator's own
reconcile/push code), bounded traffic, and a report read back through the
gateway's query API and /metrics. Everything runs in this one process, so
Ctrl-C (or the end of the run) leaves nothing behind.
"""

import asyncio
import contextlib
import pathlib
import random
import secrets
import shutil
import signal
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp
import yaml
from aiohttp import web

from gatetrace import embed
from gatetrace.demo import report, services
from gatetrace.gateway import config as gw_config
from gatetrace.gateway import server as gw_server
from gatetrace.operator import core, delivery, planner, standalone

__all__ = ["DemoOptions", "run_demo"]

POLICIES = pathlib.Path(__file__).parent / "policies"
GATEWAY = "api-gateway"
SERVICE_LABELS = {"app.kubernetes.io/component": "service"}
"""Labels of the demo service pods the reconciler manages (a policy may select them)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    requests: int = 200
    """Requests sent through the gateway (per phase)."""
    concurrency: int = 8
    """Requests in flight at once."""
    policies: pathlib.Path = POLICIES
    """Folder of TracingPolicy YAML files to apply (copied; the copy is watched with --serve)."""
    error_rate: float = 0.1
    """Share of payments that fail (HTTP 503)."""
    change_policy: bool = False
    """After the first report: raise the sampling rate live, send traffic again, compare."""
    serve: bool = False
    """Keep running (until Ctrl-C) after the report, printing the URLs to look at."""
    jaeger_agent: str | None = None
    """host:port of a real Jaeger agent (UDP) to report to as well."""
    zipkin: str | None = None
    """URL of a real Zipkin /api/v2/spans to report to as well."""
    otlp: str | None = None
    """URL of a real OTLP/HTTP /v1/traces to report to as well."""
    seed: int | None = None
    """Seed of the traffic mix and of the failures, for repeatable runs."""


def _services_policy(folder: pathlib.Path, admin_url: str, token: str) -> None:
    """The demo services (kit-managed pods) send their spans to the gateway's OTLP
    receiver, as services behind a gateway would: no in-process shortcut."""
    doc = {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "services", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": dict(SERVICE_LABELS)},
            "reporters": [
                {
                    "type": "otlpHttp",
                    "endpoint": f"{admin_url}/v1/traces",
                    "headers": {"Authorization": f"Bearer {token}"},
                }
            ],
            "batching": {"flushIntervalMs": 100},
        },
    }
    (folder / "20-services.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _copy_policies(options: DemoOptions, workdir: pathlib.Path) -> pathlib.Path:
    target = workdir / "policies"
    target.mkdir()
    extra: list[dict[str, Any]] = []
    if options.jaeger_agent:
        host, _, port = options.jaeger_agent.rpartition(":")
        extra.append({"type": "jaegerAgent", "host": host, "port": int(port)})
    if options.zipkin:
        extra.append({"type": "zipkin", "endpoint": options.zipkin})
    if options.otlp:
        extra.append({"type": "otlpHttp", "endpoint": options.otlp})
    for source in sorted(options.policies.glob("*.y*ml")):
        text = source.read_text(encoding="utf-8")
        if extra and "cluster-default" in text:
            docs = [d for d in yaml.safe_load_all(text) if d]
            for doc in docs:
                if doc.get("metadata", {}).get("name") == "cluster-default":
                    doc["spec"].setdefault("reporters", [{"type": "memory"}]).extend(extra)
            text = yaml.safe_dump_all(docs, sort_keys=False)
        (target / source.name).write_text(text, encoding="utf-8")
    return target


def _set_default_rate(folder: pathlib.Path, rate: float) -> None:
    for path in sorted(folder.glob("*.y*ml")):
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        changed = False
        for doc in docs:
            if doc.get("metadata", {}).get("name") == "cluster-default":
                doc["spec"]["sampling"]["sampler"] = {"type": "probabilistic", "rate": rate}
                changed = True
        if changed:
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


class Demo:
    """The running demo: services, gateway, reconciler."""

    def __init__(self, options: DemoOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.token = secrets.token_urlsafe(24)
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="gatetrace-demo-"))
        self.rng = random.Random(options.seed)
        self.runners: list[web.AppRunner] = []
        self.kits: list[tuple[embed.Kit, embed.AdminServer]] = []
        self.gateway: gw_server.Gateway | None = None
        self.client: delivery.AdminClient | None = None
        self.reconciler: core.Reconciler | None = None
        self.folder: standalone.PolicyFolder | None = None
        self.sink_files = standalone.FileSink(config_dir=self.workdir, on_event=self._event)
        self.events: list[str] = []

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _event(self, policy: str, type_: str, reason: str, message: str) -> None:
        self.events.append(f"{type_:<7} {policy:<34} {reason}: {message}")

    async def start(self) -> None:
        urls: dict[str, str] = {}
        settings = services.DemoSettings(
            error_rate=self.options.error_rate, seed=self.options.seed, urls=urls
        )
        for name in services.SERVICES:
            kit = embed.Kit(name, token=self.token, sink=None)
            admin = embed.AdminServer(kit, "127.0.0.1", 0)
            await admin.start()
            self.kits.append((kit, admin))
            app = services.make_service_app(name, settings, kit)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.runners.append(runner)
            urls[name] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        gateway_settings = gw_config.GatewayConfig.model_validate(
            {
                "service": GATEWAY,
                "listen": "127.0.0.1:0",
                "admin": {"listen": "127.0.0.1:0"},
                "routes": [
                    {
                        "name": "checkout",
                        "prefix": "/api/checkout",
                        "upstream": urls["frontend"],
                        "namespace": "storefront",
                    },
                    {
                        "name": "catalog",
                        "prefix": "/api/catalog",
                        "upstream": urls["frontend"],
                        "namespace": "storefront",
                    },
                    {
                        "name": "users",
                        "prefix": "/api/users",
                        "upstream": urls["users"],
                        "namespace": "identity",
                    },
                    {
                        "name": "orders",
                        "prefix": "/api/orders",
                        "upstream": urls["orders"],
                        "namespace": "shop",
                    },
                    {
                        "name": "harness",
                        "prefix": "/test",
                        "upstream": urls["harness"],
                        "namespace": "conformance",
                    },
                ],
                "tracingFile": str(self.workdir / f"default.{GATEWAY}.json"),
                "tracing": {},
            }
        )
        self.gateway = gw_server.Gateway(gateway_settings, token=self.token, drain_seconds=0.2)
        await self.gateway.start()
        policies = _copy_policies(self.options, self.workdir)
        _services_policy(policies, self.gateway.admin_url, self.token)
        self.folder = standalone.PolicyFolder(policies)
        self.client = delivery.AdminClient(lambda: self.token)
        self.reconciler = core.Reconciler(
            self.sink_files,
            delivery.Pusher(self.client, retry=delivery.RetryPolicy(attempts=3, timeout=5.0)),
            planner.IndexPlanner("gatetrace-system"),
        )
        self.reconciler.upsert_pod(standalone.GatewaySpec(GATEWAY, self.gateway.admin_url).pod())
        for kit, admin in self.kits:  # kit-managed services: pods like the gateway's
            self.reconciler.upsert_pod(
                standalone.GatewaySpec(kit.service, admin.url, labels=SERVICE_LABELS).pod()
            )

    async def apply_policies(self) -> float:
        assert self.reconciler is not None and self.folder is not None
        started = time.perf_counter()
        standalone.sync_folder(self.reconciler, self.folder, force=True)
        await self.reconciler.converge()
        return time.perf_counter() - started

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.gateway is not None:
            await self.gateway.stop(2.0)
        for runner in self.runners:
            await runner.cleanup()
        for kit, admin in self.kits:
            await admin.stop()
            await kit.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- traffic -------------------------------------------------------------

    def _request(self, i: int) -> tuple[str, str, dict[str, str], Any]:
        roll = self.rng.random()
        headers = {"x-request-id": f"req-{i}"}
        if self.rng.random() < 0.3:
            headers["baggage"] = f"tenant-id=t{i % 5},session-id=s{i},internal-secret=x"
        if roll < 0.45:
            slow = "&slow=1" if i % 25 == 7 else ""
            return "GET", f"/api/checkout?user={i}{slow}", headers, None
        if roll < 0.6:
            return "GET", "/api/catalog", headers, None
        if roll < 0.75:
            return "GET", f"/api/users/{i}", headers, None
        if roll < 0.95:
            return "POST", "/api/orders", headers, {"user": str(i)}
        # an upstream-sampled request: the caller already decided (W3C traceparent)
        trace_id = f"{self.rng.getrandbits(128) or 1:032x}"
        headers["traceparent"] = f"00-{trace_id}-{self.rng.getrandbits(64) or 1:016x}-01"
        return "GET", "/api/catalog", headers, None

    async def traffic(self, count: int, label: str) -> Counter[int]:
        assert self.gateway is not None
        base = self.gateway.proxy_url
        statuses: Counter[int] = Counter()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        done = 0

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal done
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                method, path, headers, body = self._request(i)
                try:
                    async with session.request(
                        method,
                        base + path,
                        headers=headers,
                        json=body,
                        timeout=aiohttp.ClientTimeout(total=15),
                    ) as response:
                        await response.read()
                        statuses[response.status] += 1
                except (aiohttp.ClientError, TimeoutError):
                    statuses[0] += 1
                done += 1
                if interactive and (done % max(1, count // 40) == 0 or done == count):
                    filled = int(done / count * 30)
                    self.out.write(f"\r  {label} [{'#' * filled:<30}] {done}/{count}")
                    self.out.flush()

        interactive = self.out.isatty()
        async with aiohttp.ClientSession() as session:
            workers = [worker(session) for _ in range(self.options.concurrency)]
            await asyncio.gather(*workers)
        if interactive:
            self.out.write("\n")
        else:
            self.say(f"  {label}: {count} requests sent")
        await asyncio.sleep(1.0)  # let the 100-200 ms reporters flush (services: over OTLP)
        return statuses

    # -- reading back ----------------------------------------------------------

    async def admin_get(self, session: aiohttp.ClientSession, path: str) -> Any:
        assert self.gateway is not None
        async with session.get(
            self.gateway.admin_url + path, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()

    async def decisions(self, session: aiohttp.ClientSession) -> Counter[str]:
        text = await self.admin_get(session, "/metrics")
        counts: Counter[str] = Counter()
        for sample in report.parse_metrics(text):
            if sample.name == "gatetrace_sampler_decisions_total":
                counts[sample.labels.get("decision", "?")] += int(sample.value)
        return counts

    async def print_report(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        running = await self.admin_get(session, "/admin/v1/tracing")
        found = await self.admin_get(session, f"/api/traces?service={GATEWAY}&limit=500")
        traces: list[dict[str, Any]] = found.get("data", [])
        ok = [t for t in traces if not report.trace_is_error(t)]
        bad = [t for t in traces if report.trace_is_error(t)]
        summary: dict[str, Any] = {"traces": len(traces), "error_traces": len(bad)}
        self.say(
            f"\n== tracing config: revision {running.get('revision')} "
            f"({str(running.get('version', ''))[:12]}), applied {running.get('appliedAt')}"
        )
        for source in running.get("sources") or []:
            self.say(f"   from {source}")
        self.say(f"\n== {len(traces)} traces kept at the gateway ({len(bad)} with errors)")
        if ok:
            best = max(ok, key=lambda t: len(t.get("spans", [])))
            self.say("\n-- a representative trace")
            for line in report.waterfall(best):
                self.say(line)
            summary["representative_services"] = sorted(
                {p["serviceName"] for p in best.get("processes", {}).values()}
            )
        if bad:
            kept = [
                t
                for t in bad
                if any(
                    tag["key"] == "sampling.priority.reason"
                    for s in t["spans"]
                    for tag in s.get("tags", [])
                )
            ]
            pick = max(kept or bad, key=lambda t: len(t.get("spans", [])))
            self.say("\n-- an error trace" + (" kept by error priority" if kept else ""))
            for line in report.waterfall(pick):
                self.say(line)
            summary["priority_kept_errors"] = len(kept)
            summary["error_trace_spans"] = len(pick.get("spans", []))
            hops = report.retro_services(pick)
            if hops:
                self.say(
                    f"   {len(pick.get('spans', []))} spans; kept retroactively from the "
                    f"buffers of {', '.join(hops)}"
                )
        self.say("\n-- service dependencies (from the kept traces)")
        for line in report.dependency_lines(traces):
            self.say(line)
        ops = await self.admin_get(session, f"/api/services/{GATEWAY}/operations")
        rows = []
        for op in sorted(ops.get("data", []), key=str):
            name = op["name"] if isinstance(op, dict) else str(op)
            if " /" not in name:  # client spans (named by method only): not a route
                continue
            stats = await self.admin_get(
                session,
                f"/api/stats?service={GATEWAY}&operation={urllib.parse.quote(name, safe='')}",
            )
            rows.append((name, stats))
        self.say("\n-- latency per route at the gateway (kept spans)")
        for line in report.percentile_lines(rows):
            self.say(line)
        metrics_text = await self.admin_get(session, "/metrics")
        samples = report.parse_metrics(metrics_text)
        self.say("\n-- sampler decisions (root spans, by sampler / reason / decision)")
        for s in sorted(samples, key=lambda s: -s.value):
            if s.name == "gatetrace_sampler_decisions_total":
                self.say(
                    f"  {s.labels.get('sampler', '?'):<16} {s.labels.get('reason', '?'):<22}"
                    f" {s.labels.get('decision', '?'):<12} {int(s.value):6d}"
                )
        self.say("\n-- reporters (spans exported / dropped)")
        exported: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        for s in samples:
            who = f"{s.labels.get('reporter', '?')}#{s.labels.get('reporter_instance', '0')}"
            if s.name == "gatetrace_reporter_spans_exported_total":
                exported[who] += int(s.value)
            elif s.name == "gatetrace_reporter_spans_dropped_total":
                dropped[f"{who} ({s.labels.get('reason', '?')})"] += int(s.value)
        for who, n in sorted(exported.items()):
            self.say(f"  {who:<24} exported {n}")
        for who, n in sorted(dropped.items()):
            self.say(f"  {who:<24} dropped  {n}")
        received = Counter(
            {
                s.labels.get("result", "?"): int(s.value)
                for s in samples
                if s.name == "gatetrace_otlp_spans_total"
            }
        )
        self.say(
            f"  services' spans received over OTLP/HTTP (POST /v1/traces): "
            f"{received['stored']} stored, "
            f"{sum(received.values()) - received['stored']} refused"
        )
        summary["exported"] = dict(exported)
        summary["otlp_received"] = dict(received)
        return summary


async def run_demo(
    options: DemoOptions, out: TextIO, *, stop: asyncio.Event | None = None
) -> dict[str, Any]:
    """Run the demo; returns a summary (also printed). Never leaves a server behind."""
    demo = Demo(options, out)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    summary: dict[str, Any] = {}
    try:
        await demo.start()
        assert demo.gateway is not None and demo.reconciler is not None
        demo.say(f"gateway: {demo.gateway.proxy_url}")
        demo.say(f"admin: {demo.gateway.admin_url}")
        seconds = await demo.apply_policies()
        state = next(iter(demo.reconciler.pod_states.values()))
        demo.say(
            f"policies from {options.policies} applied by the standalone reconciler: "
            f"revision {state.revision} {state.state} in {seconds * 1000:.0f} ms"
        )
        for line in demo.events:
            demo.say(f"   event: {line}")
        demo.events.clear()
        async with aiohttp.ClientSession() as session:
            statuses = await demo.traffic(options.requests, "traffic")
            demo.say("  responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
            before = await demo.decisions(session)
            summary = await demo.print_report(session)
            summary["statuses"] = dict(statuses)
            summary["revision"] = state.revision
            if options.change_policy and not stop.is_set():
                demo.say("\n== live policy change: cluster-default rate 0.2 -> 1.0 (no restart)")
                assert demo.folder is not None
                _set_default_rate(demo.folder.path, 1.0)
                seconds = await demo.apply_policies()
                state = next(iter(demo.reconciler.pod_states.values()))
                demo.say(f"   revision {state.revision} {state.state} in {seconds * 1000:.0f} ms")
                await demo.traffic(options.requests, "traffic")
                after = await demo.decisions(session)
                share = _sampled_share(before)
                share_after = _sampled_share(after - before)
                demo.say(f"   sampled share of new root spans: {share:.0%} -> {share_after:.0%}")
                summary["sampled_share"] = [share, share_after]
                summary["revision"] = state.revision
        if options.serve and not stop.is_set():
            demo.say(f"\ntrace page: {demo.gateway.admin_url}/ui/  (token: {demo.token})")
            demo.say(f"query API:  {demo.gateway.admin_url}/api/traces?service={GATEWAY}")
            demo.say(f"metrics:    {demo.gateway.admin_url}/metrics")
            demo.say(
                f"policies:   {demo.folder.path if demo.folder else ''} "
                "(edit a file: the change is applied live)"
            )
            demo.say("Ctrl-C to stop.")
            assert demo.folder is not None
            await standalone.run_standalone(
                demo.reconciler, demo.folder, [], stop, drift_interval=10.0
            )
    finally:
        await demo.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return summary


def _sampled_share(decisions: Counter[str]) -> float:
    total = sum(decisions.values())
    return decisions.get("sample", 0) / total if total else 0.0
