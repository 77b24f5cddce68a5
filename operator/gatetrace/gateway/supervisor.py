"""A gateway on every core: one supervisor process, N proxy worker processes.

:class:`Supervisor` is a :class:`~.server.Gateway` that serves no proxy itself. It binds
the proxy's listening socket and starts ``workers`` processes (:mod:`.worker`) that all
accept on it; it keeps the admin API, the metrics and query ports, the tracing file
watcher and the span store, as a single-process gateway does. The operator sees one pod
and one admin port.

- **One revision everywhere.** A config (PUT, tracing file, bootstrap) is validated and
  built here, then *prepared* by every running worker (built, not started); only when all
  of them have, the supervisor swaps and every worker commits: ``200`` means every worker
  runs it. A worker that refuses or does not answer aborts it everywhere (nothing changed:
  422 with the worker's errors, or 503). Starting workers take the config lock too, so a
  worker never starts with a revision the others have left.
- **Readiness.** ``/readyz`` is 503 while any worker is not ready (starting, restarting).
- **Metrics.** ``/metrics`` merges every process's registry per scrape
  (:mod:`gatetrace.runtime.metrics_snapshot`): counters and histograms summed, gauges
  summed (the pod's open connections, queued spans) except those the supervisor owns
  (the running revision, the store), plus ``gatetrace_worker_*`` series by ``worker``.
- **Spans for the store** arrive from the workers in batches (:class:`.worker.ShippingSink`);
  the other reporters run in each worker.
- **Restarts.** A worker that exits is started again (backoff 0.5 s doubling to 30 s while
  it keeps dying within a minute); it gets the running config before it accepts.
  SIGTERM stops every worker: they stop accepting, finish in-flight requests, flush.
"""

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from gatetrace.embed import admin as _admin
from gatetrace.gateway import config as _config
from gatetrace.gateway import (
    event_loop,
    exporters,
    server,
    span_wire,
    tracing_apply,
    worker_channel,
)
from gatetrace.policy import errors as _errors
from gatetrace.policy import rate_shares as _rate_shares
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import metrics_snapshot as _snapshot

__all__ = [
    "APPLY_TIMEOUT",
    "FanoutApplier",
    "Supervisor",
    "WorkerSlot",
    "gateway_for",
]

_log = logging.getLogger(__name__)

APPLY_TIMEOUT: Final = 10.0
"""Seconds a worker has to prepare (or commit) a config before the apply is abandoned."""
START_TIMEOUT: Final = 120.0
"""Seconds a new worker has to apply the running config and start accepting."""
METRICS_TIMEOUT: Final = 2.0
WORKERS_PATH: Final = "/admin/v1/workers"

_SUMMED_GAUGES: Final = frozenset(
    {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds"}
)
"""Per-process gauges the pod's total is the sum of (the supervisor has them too)."""


class WorkerSlot:
    """One worker position: its current process, channel and state."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.calls: worker_channel.Calls | None = None
        self.ready = False
        self.pid: int | None = None
        self.revision: int | None = None
        self.started_at = 0.0
        self.failures = 0
        """Exits in a row of a worker that lived less than a minute (the backoff's exponent)."""
        self.reader: asyncio.Task[None] | None = None
        self.last_exit: str | None = None
        """How its last process ended or failed to start (readiness and /admin/v1/workers
        show it while the worker is down)."""

    def up(self) -> float:
        return 1.0 if self.ready else 0.0

    async def call(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        calls = self.calls
        if calls is None or not self.ready:
            raise worker_channel.ChannelClosedError(f"worker {self.index} is not running")
        return await calls.call(op, timeout, **fields)


class FanoutApplier(tracing_apply.Applier):
    """The supervisor's applier: validate and build here, then every worker takes it."""

    def __init__(self, supervisor: "Supervisor", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supervisor = supervisor
        self._scratch = _metrics.Registry()

    def _build_registry(self) -> _metrics.Registry:
        # the supervisor's copy of the runtime never runs: its metrics are not the pod's
        return self._scratch

    def _start(self, parts: Any) -> None:
        return None  # the workers run the reporters

    async def _apply_locked(self, document: Any, revision: int, sources: Sequence[Any]) -> Any:
        prepared = self._prepare(document, revision, sources)
        if isinstance(prepared, tracing_apply.Applied):
            return prepared
        # the validated document, defaults filled in: its traces/s budgets get divided
        prepared_on = await self.supervisor.prepare_everywhere(
            prepared.active.config, revision, sources
        )
        applied = self._swap(prepared)
        await self.supervisor.commit_everywhere(prepared_on, revision)
        return applied


class Supervisor(server.Gateway):
    """The admin, metrics and query ports and the store; the proxy runs in workers."""

    def __init__(
        self,
        settings: _config.GatewayConfig,
        *,
        token: str,
        apply_timeout: float = APPLY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        self.apply_timeout = apply_timeout
        """Seconds a worker has to prepare or commit a config (then it is hung: killed)."""
        self.slots = [WorkerSlot(i) for i in range(settings.worker_count)]
        self._token = token
        self._listen: socket.socket | None = None
        self._stopping = False
        self._restarts: set[asyncio.Task[None]] = set()
        super().__init__(settings, token=token, **kwargs)
        self._received = self.registry.counter(
            "gatetrace_worker_spans_received",
            "Spans the supervisor's store received from the workers",
        )
        self.registry.gauge("gatetrace_workers", "Proxy worker processes configured").set(
            len(self.slots)
        )
        up = self.registry.gauge("gatetrace_worker_up", "1 while the worker serves", ["worker"])
        restarts = self.registry.counter(
            "gatetrace_worker_restarts", "Times a worker process was started again", ["worker"]
        )
        self._restart_counts = restarts
        for slot in self.slots:
            up.set_function(slot.up, (str(slot.index),))
            restarts.inc((str(slot.index),), 0)
        for app in (self.admin_app, *(a for a, _ in self.side_apps.values())):
            app[_admin.COLLECT] = self.collect
            app[_admin.NOT_READY] = self.not_ready
        self.admin_app.router.add_get(WORKERS_PATH, self._workers_handler)

    def _make_applier(self) -> tracing_apply.Applier:
        return FanoutApplier(
            self,
            holder=self.holder,
            service=self.settings.service,
            registry=self.registry,
            exporters=exporters.factory(self.store),
            drain_seconds=0.0,
            on_applied=lambda _parts, cfg: exporters.configure_store(self.store, cfg),
            process=self.resource.attributes,
        )

    def _make_proxy_app(self) -> web.Application | None:
        return None

    # -- workers -----------------------------------------------------------

    async def _start_proxy(self) -> None:
        host, port = _config.split_host_port(self.settings.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listen = socket.create_server((host, port), family=family, backlog=512)
        self.proxy_address = (host, int(self._listen.getsockname()[1]))
        try:
            for slot in self.slots:
                await self._spawn(slot)
        except Exception as e:
            raise OSError(f"worker did not start: {e}") from e

    async def _spawn(self, slot: WorkerSlot) -> None:
        assert self._listen is not None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gatetrace.gateway.worker",
                "--index",
                str(slot.index),
                "--listen-fd",
                str(self._listen.fileno()),
                "--channel-fd",
                str(child.fileno()),
                "--log-level",
                logging.getLevelName(logging.getLogger().getEffectiveLevel()),
                "--loop",
                event_loop.resolve(self.settings.event_loop),
                pass_fds=(self._listen.fileno(), child.fileno()),
            )
        finally:
            child.close()
        slot.process = process
        slot.started_at = time.monotonic()
        channel: worker_channel.Channel | None = None
        try:
            channel = await worker_channel.Channel.open(parent)
            # its imports done, before the config lock: a slow or stuck start holds no apply
            hello = await asyncio.wait_for(channel.receive(), START_TIMEOUT)
            if hello.get("op") != "hello":
                raise RuntimeError(f"worker {slot.index}: {hello.get('message', hello)}")
            async with self.holder.lock:  # no config change between this init and "ready"
                current = self.holder.current
                channel.send(
                    {
                        "op": "init",
                        "settings": self.settings,
                        "token": self._token,
                        "shutdown_timeout": self.shutdown_timeout,
                        "config": None
                        if current is None
                        else {
                            "document": self.worker_document(current.config),
                            "revision": current.revision,
                            "sources": list(current.sources),
                        },
                    }
                )
                # applying the config and binding: as long as a prepare may take
                first = await asyncio.wait_for(channel.receive(), self.apply_timeout)
                if first.get("op") != "ready":
                    raise RuntimeError(f"worker {slot.index}: {first.get('message', first)}")
                slot.calls = worker_channel.Calls(channel)
                slot.pid = first.get("pid")
                slot.revision = first.get("revision")
                slot.ready = True
        except BaseException as e:  # a failed, hung or cancelled (stop) start: none left
            if channel is not None:
                channel.close()
            else:
                parent.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            if isinstance(e, (TimeoutError, worker_channel.ChannelClosedError)):
                raise RuntimeError(f"worker {slot.index} exited before it was ready") from e
            raise
        slot.reader = asyncio.get_running_loop().create_task(self._read(slot, slot.calls))
        _log.info("worker %d (pid %s) serving revision %s", slot.index, slot.pid, slot.revision)

    async def _read(self, slot: WorkerSlot, calls: worker_channel.Calls) -> None:
        """Take a worker's spans and replies until its channel ends; then restart it."""
        try:
            while True:
                message = await calls.channel.receive()
                op = message.get("op")
                if op == "spans":
                    spans, sizes = span_wire.decode(message["spans"])
                    self._received.inc(amount=len(spans))
                    self.store.add(spans, sizes=sizes)
                elif op is None:
                    calls.answered(message)
        except worker_channel.ChannelClosedError:
            pass
        finally:
            slot.ready = False
            calls.fail_all()
            calls.channel.close()
        process = slot.process
        code = await _reap(process) if process is not None else None
        if self._stopping:
            return
        lived = time.monotonic() - slot.started_at
        slot.failures = slot.failures + 1 if lived < 60 else 1
        delay = min(30.0, 0.5 * 2 ** (slot.failures - 1))
        slot.last_exit = (
            f"pid {slot.pid} exited with {_exit_text(code)} after {lived:.1f}s, "
            f"starting again in {delay:.1f}s"
        )
        _log.warning("worker %d: %s", slot.index, slot.last_exit)
        task = asyncio.get_running_loop().create_task(self._restart(slot, delay))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, slot: WorkerSlot, delay: float) -> None:
        await asyncio.sleep(delay)
        while not self._stopping:
            self._restart_counts.inc((str(slot.index),))
            try:
                await self._spawn(slot)
                return
            except Exception as e:  # try again later; readiness says why meanwhile
                slot.failures += 1
                delay = min(30.0, 0.5 * 2 ** (slot.failures - 1))
                slot.last_exit = f"did not start ({e}), trying again in {delay:.1f}s"
                _log.error("worker %d %s", slot.index, slot.last_exit)
                await asyncio.sleep(delay)

    async def _stop_proxy(self, deadline: float) -> None:
        self._stopping = True
        restarts = list(self._restarts)
        for task in restarts:
            task.cancel()
        # a worker being started is killed and reaped by its cancelled _spawn
        await asyncio.gather(*restarts, return_exceptions=True)
        running = [slot for slot in self.slots if slot.process is not None]
        for slot in running:
            if slot.calls is not None and not slot.calls.channel.closed:
                with contextlib.suppress(worker_channel.ChannelClosedError):
                    slot.calls.channel.send({"op": "stop"})
        readers = [slot.reader for slot in running if slot.reader is not None]
        if readers:  # each ends when its worker has flushed and closed
            _done, late = await asyncio.wait(readers, timeout=deadline + 5.0)
            for slot in running:
                if slot.reader in late and slot.process is not None:
                    _log.warning("worker %d did not stop in time; killing it", slot.index)
                    slot.process.kill()
            if late:
                await asyncio.wait(late, timeout=5.0)
        if self._listen is not None:
            self._listen.close()
            self._listen = None

    # -- one revision everywhere ----------------------------------------------

    def _running(self) -> list[WorkerSlot]:
        return [slot for slot in self.slots if slot.ready]

    async def prepare_everywhere(
        self, document: Any, revision: int, sources: Sequence[Any]
    ) -> list[WorkerSlot]:
        """Every running worker prepares ``revision``; on any failure all abort and this
        raises (:class:`~.tracing_apply.ApplyError`). The workers that prepared it."""
        slots = self._running()
        results = await asyncio.gather(
            *(
                slot.call(
                    "prepare",
                    self.apply_timeout,
                    document=self.worker_document(document),
                    revision=revision,
                    sources=list(sources),
                )
                for slot in slots
            ),
            return_exceptions=True,
        )
        prepared = [
            slot
            for slot, result in zip(slots, results, strict=True)
            if isinstance(result, dict) and result.get("prepared")
        ]
        failed = [
            (slot, result)
            for slot, result in zip(slots, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if not failed:
            return prepared
        # every worker that did not refuse may hold it prepared (a late one: once it
        # answers): abort in order behind the prepare; a worker that did not answer at
        # all is hung and started again (with the running config)
        refused = {id(slot) for slot, e in failed if isinstance(e, worker_channel.RemoteError)}
        await asyncio.gather(
            *(
                slot.call("abort", self.apply_timeout)
                for slot in slots
                if id(slot) not in refused and slot.ready
            ),
            return_exceptions=True,
        )
        for slot, error in failed:
            if isinstance(error, TimeoutError) and slot.process is not None:
                _log.error(
                    "worker %d (pid %s) did not answer within %.1fs: killing it",
                    slot.index,
                    slot.pid,
                    self.apply_timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    slot.process.kill()
        slot, error = failed[0]
        raise _refusal(slot, revision, error)

    async def commit_everywhere(self, slots: Sequence[WorkerSlot], revision: int) -> None:
        """The prepared workers run ``revision`` (one that died meanwhile starts with it;
        one that does not answer is killed, and starts with it too)."""
        processes = [slot.process for slot in slots]  # not a replacement started meanwhile
        results = await asyncio.gather(
            *(slot.call("commit", self.apply_timeout) for slot in slots),
            return_exceptions=True,
        )
        for slot, process, result in zip(slots, processes, results, strict=True):
            if isinstance(result, worker_channel.ChannelClosedError):
                _log.error("worker %d exited before committing revision %d", slot.index, revision)
            elif isinstance(result, BaseException):
                # it would stay on the old revision: kill it, it starts again with this one
                _log.error(
                    "worker %d (pid %s) did not commit revision %d (%r): killing it",
                    slot.index,
                    slot.pid,
                    revision,
                    result,
                )
                if process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            else:
                slot.revision = revision

    def worker_document(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """What a worker runs of the pod's config: its traces/s budgets (rate limits, the
        priority budget, the cap...) divided by the number of workers, each of which
        samples on its own (a pod's ``tracesPerSecond: 30`` would be 30 per worker). The
        kernel does not spread connections evenly, so a worker that gets most of them
        samples less of its traffic than the pod's budget would allow."""
        return _rate_shares.divide(document, len(self.slots))

    # -- what the admin API shows --------------------------------------------

    def not_ready(self) -> str | None:
        down = [slot for slot in self.slots if not slot.ready]
        if not down:
            return None
        why = "; ".join(f"worker {s.index}: {s.last_exit}" for s in down if s.last_exit)
        waiting = ", ".join(str(slot.index) for slot in down)
        return f"worker(s) {waiting} not serving yet" + (f" ({why})" if why else "")

    async def workers(self) -> list[dict[str, Any]]:
        """Each worker as it answers now: pid, the revision it runs, ready."""

        async def one(slot: WorkerSlot) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "worker": slot.index,
                "ready": slot.ready,
                "pid": slot.pid,
                "lastExit": slot.last_exit,
            }
            try:
                status = await slot.call("status", METRICS_TIMEOUT)
            except (worker_channel.ChannelClosedError, worker_channel.RemoteError, TimeoutError):
                entry["revision"] = None
                entry["ready"] = False
            else:
                entry["revision"] = status.get("revision")
                entry["served"] = status.get("served")
                entry["loop"] = status.get("loop")
            return entry

        return list(await asyncio.gather(*(one(slot) for slot in self.slots)))

    async def _workers_handler(self, request: web.Request) -> web.Response:
        current = self.holder.current
        return web.json_response(
            {
                "revision": current.revision if current is not None else None,
                "workers": await self.workers(),
            }
        )

    async def collect(self) -> Sequence[_metrics.Registry]:
        """Every process's metrics, merged (the module docstring says how)."""
        own = _snapshot.snapshot([self.registry, *self.admin_app[_admin.REGISTRIES]])
        owned = {d.name for d in own if d.kind == "gauge"} - _SUMMED_GAUGES
        replies = await asyncio.gather(
            *(slot.call("metrics", METRICS_TIMEOUT) for slot in self._running()),
            return_exceptions=True,
        )
        snapshots = [own] + [r["metrics"] for r in replies if isinstance(r, dict)]
        merged = _snapshot.merge(snapshots, owned=owned)
        for conflict in merged.conflicts:
            _log.warning("metrics not merged: %s", conflict)
        return [merged.registry]


def _refusal(slot: WorkerSlot, revision: int, error: BaseException) -> tracing_apply.ApplyError:
    if isinstance(error, worker_channel.RemoteError):
        reply = error.reply
        if reply.get("kind") == "invalid":
            return tracing_apply.InvalidConfigError(
                [
                    _errors.FieldError(loc, f"worker {slot.index}: {msg}")
                    for loc, msg in reply.get("errors", ())
                ]
            )
        if reply.get("kind") == "stale":
            return tracing_apply.StaleRevisionError(
                f"worker {slot.index}: {reply.get('message')}", int(reply.get("running", 0))
            )
        return tracing_apply.ApplyError(
            f"worker {slot.index} could not apply revision {revision}: {reply.get('message')}; "
            "no worker changed"
        )
    what = "did not answer in time" if isinstance(error, TimeoutError) else "exited"
    return tracing_apply.ApplyError(
        f"worker {slot.index} {what} while preparing revision {revision}; no worker changed"
    )


async def _reap(process: asyncio.subprocess.Process) -> int | None:
    """Wait for ``process`` to exit (kill it after 10 s); its exit code."""
    try:
        return await asyncio.wait_for(process.wait(), 10.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return await process.wait()


def gateway_for(settings: _config.GatewayConfig, **kwargs: Any) -> server.Gateway:
    """A :class:`Supervisor` when the config asks for more than one worker, else the
    single-process :class:`~.server.Gateway`."""
    if settings.worker_count > 1:
        return Supervisor(settings, **kwargs)
    return server.Gateway(settings, **kwargs)


def _exit_text(code: int | None) -> str:
    """``code 3`` / ``signal SIGKILL`` (a negative return code) / ``an unknown status``."""
    if code is None:
        return "an unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
