"""One gateway worker process: the proxy on the supervisor's listening socket.

``python -m gatetrace.gateway.worker --index N --listen-fd F --channel-fd C`` is what
:mod:`.supervisor` starts, once per worker. The worker inherits the proxy's listening
socket (every worker accepts on it: the kernel hands each connection to one) and one end
of a :mod:`.worker_channel`. Once imported it says ``hello`` (the supervisor takes the
config lock only then), reads its settings and the running tracing config from the first
message, applies the config, and only then accepts connections and says
``ready``. Then it answers the supervisor:

- ``prepare`` / ``commit`` / ``abort``: a tracing config taken by every worker as one
  revision (:meth:`~gatetrace.embed.tracing_apply.Applier.prepare`);
- ``metrics``: its registry as data (:mod:`gatetrace.runtime.metrics_snapshot`);
- ``status``: the revision it runs;
- ``stop``: stop accepting, finish in-flight requests, flush the reporters, exit.

Reporters run here, in each worker, except the ``memory`` reporter: its spans are shipped
to the supervisor's store in batches (:class:`ShippingSink`), bounded by the channel's
backlog; spans refused are counted. A worker whose channel closes (the supervisor is
gone) stops the same way.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from gatetrace.embed import exporters as _exporters
from gatetrace.embed import keep
from gatetrace.gateway import config as _config
from gatetrace.gateway import (
    event_loop,
    proxy_app,
    server,
    span_wire,
    state,
    tracing_apply,
    worker_channel,
)
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import metrics_snapshot as _snapshot
from gatetrace.runtime import process_metrics as _process_metrics
from gatetrace.runtime import span as _span

__all__ = ["MAX_SHIPPING_BACKLOG_BYTES", "ShippingSink", "Worker", "main"]

_log = logging.getLogger(__name__)

MAX_SHIPPING_BACKLOG_BYTES: Final = 16 << 20
"""Spans for the supervisor's store wait in the channel up to this many bytes; beyond,
batches are refused (counted) rather than growing the worker's memory."""

_SOURCE: Final = "supervisor"
_IN_ORDER: Final = frozenset({"prepare", "commit", "abort"})
"""Config steps run one after the other, in the order sent; the rest concurrently."""


class ShippingSink:
    """The ``memory`` reporter's sink in a worker: batches go to the supervisor's store."""

    def __init__(
        self,
        channel: worker_channel.Channel,
        registry: _metrics.Registry,
        *,
        max_backlog_bytes: int = MAX_SHIPPING_BACKLOG_BYTES,
    ) -> None:
        self.channel = channel
        self.max_backlog_bytes = max_backlog_bytes
        self._shipped = registry.counter(
            "gatetrace_worker_spans_shipped",
            "Spans a worker sent to the supervisor's in-memory store",
        )
        self._refused = registry.counter(
            "gatetrace_worker_spans_ship_refused",
            "Spans a worker did not send to the supervisor's store (channel backlog full or "
            "closed)",
        )

    def add(self, spans: Sequence[_span.Span]) -> Mapping[str, int] | None:
        channel = self.channel
        if channel.closed or channel.backlog > self.max_backlog_bytes:
            self._refused.inc(amount=len(spans))
            return {"shipping": len(spans)}
        encoded = span_wire.encode(spans)
        try:
            channel.send({"op": "spans", "spans": encoded})
        except (worker_channel.ChannelClosedError, ValueError):  # ValueError: above a frame
            self._refused.inc(amount=len(spans))
            return {"shipping": len(spans)}
        self._shipped.inc(amount=len(encoded))
        return None


class Worker:
    """The proxy half of a gateway, in a process of its own."""

    def __init__(
        self,
        settings: _config.GatewayConfig,
        *,
        token: str,
        index: int,
        channel: worker_channel.Channel,
        listen: socket.socket,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.index = index
        self.channel = channel
        self.listen = listen
        self.shutdown_timeout = shutdown_timeout
        self.resource = server.gateway_resource(settings, os.environ)
        self.registry = _metrics.Registry()
        _process_metrics.register_process_metrics(self.registry)
        self.holder = state.TracingHolder()
        self.applier = tracing_apply.Applier(
            self.holder,
            service=settings.service,
            registry=self.registry,
            exporters=_exporters.factory(ShippingSink(channel, self.registry)),
            drain_seconds=settings.swap_grace_seconds,
            process=self.resource.attributes,
        )
        self.keeper = keep.Keeper(token, self.registry)
        self.app = proxy_app.make_proxy_app(
            settings, self.holder, self.registry, keeper=self.keeper
        )
        self._runner: web.AppRunner | None = None
        self._prepared: tracing_apply.Prepared | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()

    async def start(self, initial: Mapping[str, Any] | None) -> None:
        """Apply the running config, then accept connections."""
        if initial is not None:
            await self.applier.apply(
                initial["document"],
                revision=initial["revision"],
                source=_SOURCE,
                sources=initial.get("sources", ()),
            )
        self._runner, _ = await server.bind(
            self.app, self.settings.listen, self.shutdown_timeout, sock=self.listen
        )

    def _revision(self) -> int | None:
        current = self.holder.current
        return current.revision if current is not None else None

    async def serve(self) -> None:
        """Answer the supervisor until ``stop`` (or until the channel closes)."""
        self.channel.send({"op": "ready", "pid": os.getpid(), "revision": self._revision()})
        try:
            while not self.stopping.is_set():
                message = await self.channel.receive()
                op = message.get("op")
                if op == "stop":
                    break
                if op in _IN_ORDER:  # an abort must find the prepare before it done
                    await self._answer(message)
                    continue
                task = asyncio.get_running_loop().create_task(self._answer(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except worker_channel.ChannelClosedError:
            _log.warning("worker %d: the supervisor is gone; stopping", self.index)

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any]
        try:
            reply = await self._handle(message)
        except tracing_apply.StaleRevisionError as e:
            reply = {"ok": False, "kind": "stale", "message": str(e), "running": e.running}
        except tracing_apply.InvalidConfigError as e:
            reply = {
                "ok": False,
                "kind": "invalid",
                "message": str(e),
                "errors": [(err.loc, err.msg) for err in e.errors],
            }
        except Exception as e:  # a reply, not a dead worker
            _log.exception("worker %d: %s failed", self.index, message.get("op"))
            reply = {"ok": False, "kind": "error", "message": f"{type(e).__name__}: {e}"}
        reply["id"] = message.get("id")
        with contextlib.suppress(worker_channel.ChannelClosedError):
            self.channel.send(reply)

    async def _handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        if op == "prepare":
            if self._prepared is not None:
                raise RuntimeError("a prepared config is waiting for commit or abort")
            outcome = await self.applier.prepare(
                message["document"],
                revision=message["revision"],
                source=_SOURCE,
                sources=message.get("sources", ()),
            )
            if isinstance(outcome, tracing_apply.Prepared):
                self._prepared = outcome
                return {"ok": True, "prepared": True, "version": outcome.version}
            return {"ok": True, "prepared": False, "version": outcome.version}
        if op == "commit":
            prepared, self._prepared = self._prepared, None
            if prepared is None:
                raise RuntimeError("commit without a prepared config")
            applied = self.applier.commit(prepared, _SOURCE)
            return {"ok": True, "revision": applied.revision, "version": applied.version}
        if op == "abort":
            prepared, self._prepared = self._prepared, None
            if prepared is not None:
                await self.applier.abort(prepared)
            return {"ok": True}
        if op == "metrics":
            return {"ok": True, "metrics": _snapshot.snapshot([self.registry])}
        if op == "status":
            served = self.registry.metrics.get("gatetrace_gateway_requests")
            return {
                "ok": True,
                "pid": os.getpid(),
                "revision": self._revision(),
                "served": int(served.total()) if isinstance(served, _metrics.Counter) else 0,
                "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            }
        raise ValueError(f"unknown op {op!r}")

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, finish in-flight requests, flush and close the reporters."""
        deadline = self.shutdown_timeout if timeout is None else timeout
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            await self.applier.abort(prepared)
        try:
            await asyncio.wait_for(self.applier.close(deadline), deadline + 1.0)
        except TimeoutError:
            _log.warning("worker %d: reporters did not flush within %.1fs", self.index, deadline)
        await self.keeper.drain(min(deadline, 2.0))
        await self.keeper.close()
        with contextlib.suppress(TimeoutError, worker_channel.ChannelClosedError):
            await asyncio.wait_for(self.channel.drain(), 5.0)


async def _run(index: int, listen_fd: int, channel_fd: int) -> int:
    listen = socket.socket(fileno=listen_fd)
    listen.setblocking(False)
    channel = await worker_channel.Channel.open(socket.socket(fileno=channel_fd))
    channel.send({"op": "hello", "pid": os.getpid()})  # imported: the supervisor sends init
    try:
        init = await channel.receive()
    except worker_channel.ChannelClosedError:
        return 1
    worker = Worker(
        init["settings"],
        token=init["token"],
        index=index,
        channel=channel,
        listen=listen,
        shutdown_timeout=init.get("shutdown_timeout", 10.0),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.stopping.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the supervisor decides
    try:
        await worker.start(init.get("config"))
    except (tracing_apply.ApplyError, OSError) as e:
        channel.send({"op": "failed", "message": f"{type(e).__name__}: {e}"})
        await channel.aclose()
        return 1
    proxy_app.tune_collector()
    serving = loop.create_task(worker.serve())
    stopping = loop.create_task(worker.stopping.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    stopping.cancel()
    await worker.stop()
    with contextlib.suppress(worker_channel.ChannelClosedError):
        channel.send({"op": "stopped"})
    await channel.aclose()  # the last spans and "stopped" are written before the exit
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatetrace-gateway-worker")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[worker {args.index}]: %(message)s",
    )
    return event_loop.run(_run(args.index, args.listen_fd, args.channel_fd), args.loop)


if __name__ == "__main__":
    sys.exit(main())
