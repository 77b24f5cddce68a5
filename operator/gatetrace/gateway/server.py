"""Running the gateway: the proxy and admin apps, config loading, graceful shutdown.

:class:`Gateway` owns one process's pieces (holder, span store, metrics
registry, applier, file watcher, the servers). :meth:`Gateway.start` loads
the tracing file if there is one (the operator's latest), else the bootstrap
``tracing`` block of the gateway config (as revision 0), then binds the
proxy and admin ports, and the metrics and read-only query ports when the
config names them (``metrics.listen``, ``queryApi.listen``). :meth:`Gateway.stop`
stops accepting, lets in-flight proxy requests finish, then flushes and closes
the reporters within a deadline.

:func:`serve` runs a gateway until SIGTERM/SIGINT (or ``stop`` is set);
:func:`run_gateway` is what ``gatetrace gateway --config FILE`` calls.
"""

import asyncio
import logging
import pathlib
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

import gatetrace
from gatetrace.embed import keep
from gatetrace.gateway import (
    admin,
    badrequests,
    connections,
    exporters,
    metrics_app,
    proxy_app,
    query_api,
    state,
    store,
    tracing_apply,
    tracing_file,
)
from gatetrace.gateway import config as _config
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import process_metrics as _process_metrics
from gatetrace.runtime import process_resource as _process_resource

__all__ = ["Gateway", "StartupError", "bind", "read_token", "run_gateway", "serve"]

_log = logging.getLogger(__name__)

TOKEN_ENV = "GATETRACE_ADMIN_TOKEN"  # noqa: S105 -- a variable name, not a secret
"""Environment variable the CLI reads the admin token from when ``admin.tokenFile`` is unset."""


class StartupError(Exception):
    """The gateway cannot start (bad bootstrap config, no admin token, port in use...)."""


def read_token(settings: _config.GatewayConfig, fallback: str | None = None) -> str:
    """The admin token: ``admin.tokenFile`` (whitespace stripped), else ``fallback`` (the CLI
    passes ``$GATETRACE_ADMIN_TOKEN``)."""
    path = settings.admin.token_file
    if path is not None:
        try:
            token = pathlib.Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise StartupError(f"admin.tokenFile: cannot read {path}: {e}") from e
        if not token:
            raise StartupError(f"admin.tokenFile: {path} is empty")
        return token
    token = (fallback or "").strip()
    if not token:
        raise StartupError(f"no admin token: set admin.tokenFile in the config or ${TOKEN_ENV}")
    return token


class Gateway:
    """One gateway process: proxy app + admin app sharing a holder, store and registry."""

    def __init__(
        self,
        settings: _config.GatewayConfig,
        *,
        token: str,
        file_poll_interval: float = 1.0,
        drain_seconds: float | None = None,
        shutdown_timeout: float = 10.0,
        resource: _process_resource.ProcessResource | None = None,
    ) -> None:
        self.settings = settings
        self.resource = resource if resource is not None else gateway_resource(settings, {})
        """This process's resource attributes (detected at the edge from the environment)."""
        self.registry = _metrics.Registry()
        _process_metrics.register_build_info(self.registry, gatetrace.__version__)
        _process_metrics.register_process_metrics(self.registry)
        self.holder = state.TracingHolder()
        self.store = store.SpanStore()
        _watch_store(self.store, self.registry)
        self.shutdown_timeout = shutdown_timeout
        """Seconds :meth:`stop` grants in-flight requests plus the reporters' final flush."""
        self.drain_seconds = settings.swap_grace_seconds if drain_seconds is None else drain_seconds
        self.applier = self._make_applier()
        self.watcher: tracing_file.TracingFileWatcher | None = None
        if settings.tracing_file is not None:
            self.watcher = tracing_file.TracingFileWatcher(
                settings.tracing_file,
                self.applier,
                registry=self.registry,
                interval=file_poll_interval,
            )
        self.keeper = keep.Keeper(token, self.registry)
        """Keep requests to the services that buffered a kept pending trace."""
        self.proxy_app = self._make_proxy_app()
        self.admin_app = admin.make_admin_app(
            settings, self.holder, self.store, self.registry, token, applier=self.applier
        )
        self._proxy_runner: web.AppRunner | None = None
        """The proxy's runner when this process serves the proxy."""
        self._admin_runner: web.AppRunner | None = None
        self.proxy_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None
        self.side_apps = _side_apps(settings, self)
        """The optional ports' apps by their config field (``metrics.listen``...)."""
        self._side_runners: list[web.AppRunner] = []
        self.side_addresses: dict[str, tuple[str, int]] = {}
        """Where each optional port is bound, by its config field, once started."""

    def _make_applier(self) -> tracing_apply.Applier:
        return tracing_apply.Applier(
            self.holder,
            service=self.settings.service,
            registry=self.registry,
            exporters=exporters.factory(self.store),
            drain_seconds=self.drain_seconds,
            on_applied=lambda _parts, cfg: exporters.configure_store(self.store, cfg),
            process=self.resource.attributes,
        )

    def _make_proxy_app(self) -> web.Application | None:
        """The proxy app this process serves (None: other processes serve the proxy)."""
        return proxy_app.make_proxy_app(
            self.settings, self.holder, self.registry, keeper=self.keeper
        )

    async def _start_proxy(self) -> None:
        assert self.proxy_app is not None
        self._proxy_runner, self.proxy_address = await self._bind(
            self.proxy_app, self.settings.listen
        )

    async def _stop_proxy(self, deadline: float) -> None:
        """Stop accepting and wait for in-flight requests (their spans get flushed after)."""
        proxy_runner, self._proxy_runner = self._proxy_runner, None
        if proxy_runner is not None:
            await proxy_runner.cleanup()

    @property
    def proxy_url(self) -> str:
        assert self.proxy_address is not None, "start() the gateway first"
        return _url(*self.proxy_address)

    @property
    def admin_url(self) -> str:
        assert self.admin_address is not None, "start() the gateway first"
        return _url(*self.admin_address)

    @property
    def metrics_url(self) -> str | None:
        """The metrics port's URL (None when ``metrics.listen`` is not set)."""
        address = self.side_addresses.get(METRICS_FIELD)
        return _url(*address) if address is not None else None

    @property
    def query_url(self) -> str | None:
        """The read-only query port's URL (None when ``queryApi.listen`` is not set)."""
        address = self.side_addresses.get(QUERY_FIELD)
        return _url(*address) if address is not None else None

    async def load_initial_config(self) -> None:
        """The tracing file (if present and valid), else the bootstrap block as revision 0."""
        if self.watcher is not None:
            outcome = await self.watcher.check()
            if outcome in ("applied", "unchanged"):
                return
        bootstrap = self.settings.tracing
        if bootstrap is None or self.holder.current is not None:
            return
        try:
            await self.applier.apply(bootstrap, revision=0, source="bootstrap")
        except tracing_apply.InvalidConfigError as e:
            problems = "; ".join(
                f"tracing.{err.loc.removeprefix('config.')}: {err.msg}" for err in e.errors
            )
            raise StartupError(f"invalid bootstrap tracing config: {problems}") from e

    async def start(self) -> None:
        """Load the config and bind the ports; raise :class:`StartupError` on failure."""
        await self.load_initial_config()
        field = "listen"
        try:
            await self._start_proxy()
            field = "admin.listen"
            self._admin_runner, self.admin_address = await self._bind(
                self.admin_app, self.settings.admin.listen
            )
            for field, (app, listen) in self.side_apps.items():
                runner, self.side_addresses[field] = await self._bind(app, listen)
                self._side_runners.append(runner)
        except OSError as e:
            await self.stop(1.0)
            raise StartupError(f"cannot listen ({field}): {e}") from e
        if self.watcher is not None:
            self.watcher.start()
        _log.info(
            "gateway %s: proxy on %s, admin on %s, tracing %s",
            self.settings.service,
            self.proxy_url,
            self.admin_url,
            f"revision {self.holder.current.revision}" if self.holder.current else "not loaded",
        )

    async def _bind(
        self, app: web.Application, listen: str
    ) -> tuple[web.AppRunner, tuple[str, int]]:
        return await bind(app, listen, self.shutdown_timeout)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, finish in-flight requests, flush and close reporters (bounded)."""
        deadline = self.shutdown_timeout if timeout is None else timeout
        if self.watcher is not None:
            await self.watcher.stop()
        # the proxy first: it waits for in-flight requests, whose spans then get flushed
        await self._stop_proxy(deadline)
        try:
            await asyncio.wait_for(self.applier.close(deadline), deadline + 1.0)
        except TimeoutError:
            _log.warning("reporters did not flush within %.1fs; spans may be lost", deadline)
        await self.keeper.drain(min(deadline, 2.0))
        await self.keeper.close()
        admin_runner, self._admin_runner = self._admin_runner, None
        if admin_runner is not None:
            await admin_runner.cleanup()
        side_runners, self._side_runners = self._side_runners, []
        for runner in side_runners:
            await runner.cleanup()


async def bind(
    app: web.Application,
    listen: str,
    shutdown_timeout: float,
    *,
    sock: socket.socket | None = None,
) -> tuple[web.AppRunner, tuple[str, int]]:
    """Serve ``app`` on ``listen`` (or on the listening ``sock``): its runner and address.
    The proxy app (it has a connection guard) gets the edge's limits and error log."""
    host, port = _config.split_host_port(listen)
    guard = app.get(proxy_app.GUARD)
    extra: dict[str, Any] = {}
    if guard is not None:  # the proxy port: the edge
        extra["logger"] = badrequests.RequestErrorLog()
        # aiohttp's own keep-alive close comes after ours, which counts it
        extra["keepalive_timeout"] = guard.idle_timeout + 1.0
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        **extra,
    )
    await runner.setup()
    site: web.BaseSite
    if guard is not None:  # the proxy port: client connection limits
        site = connections.GuardedSite(runner, host, port, guard, sock=sock)
    else:
        site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound: tuple[str, int] = runner.addresses[0][:2]
    return runner, (host, int(bound[1]))


METRICS_FIELD = "metrics.listen"
QUERY_FIELD = "queryApi.listen"


def _side_apps(
    settings: _config.GatewayConfig, gateway: Gateway
) -> dict[str, tuple[web.Application, str]]:
    """The apps of the optional ports the config asks for, with their listen address."""
    apps: dict[str, tuple[web.Application, str]] = {}
    if settings.metrics.listen is not None:
        registries = gateway.admin_app[admin.REGISTRIES]
        apps[METRICS_FIELD] = (
            metrics_app.make_metrics_app(gateway.holder, registries),
            settings.metrics.listen,
        )
    if settings.query_api.listen is not None:
        apps[QUERY_FIELD] = (query_api.make_query_app(gateway.store), settings.query_api.listen)
    return apps


def _watch_store(span_store: store.SpanStore, registry: _metrics.Registry) -> None:
    """The memory reporter's store in /metrics: what it holds and what it refused."""
    registry.gauge("gatetrace_store_spans", "Spans held by the in-memory store").set_function(
        lambda: float(len(span_store))
    )
    registry.gauge(
        "gatetrace_store_bytes", "Estimated bytes of the spans held by the in-memory store"
    ).set_function(lambda: float(span_store.bytes))
    registry.gauge(
        "gatetrace_store_max_bytes", "The in-memory store's byte bound (memory.maxBytes)"
    ).set_function(lambda: float(span_store.max_bytes))
    registry.gauge(
        "gatetrace_store_spans_dropped",
        "Spans the in-memory store refused because their trace was full (a total)",
    ).set_function(lambda: float(span_store.dropped))


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def serve(
    settings: _config.GatewayConfig,
    *,
    token: str,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Gateway], Awaitable[None] | None] | None = None,
    resource: _process_resource.ProcessResource | None = None,
    make: Callable[..., Gateway] | None = None,
) -> None:
    """Run a gateway until SIGTERM/SIGINT or until ``stop`` is set, then shut down cleanly.
    ``make`` builds it (default :class:`Gateway`; the CLI passes
    :func:`gatetrace.gateway.supervisor.gateway_for`, which starts workers)."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform
            pass
    gateway = (make or Gateway)(settings, token=token, resource=resource)
    try:
        await gateway.start()
        if on_started is not None:
            result = on_started(gateway)
            if result is not None:
                await result
        await stop.wait()
        _log.info("gateway %s: shutting down", settings.service)
    finally:
        await gateway.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def gateway_resource(
    settings: _config.GatewayConfig, environ: Mapping[str, str]
) -> _process_resource.ProcessResource:
    """The gateway's resource: ``service`` from the config file when set there, else
    ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (the chart sets the latter from the
    Downward API); ``service.version`` is the gatetrace version."""
    return _process_resource.detect(
        environ,
        default_service=settings.service,
        explicit_service="service" in settings.model_fields_set,
        component="gateway",
        service_version=gatetrace.__version__,
        sdk_version=gatetrace.__version__,
    )


async def run_gateway(
    config_path: str | pathlib.Path,
    *,
    admin_token: str | None = None,
    environ: Mapping[str, str] | None = None,
    make: Callable[..., Gateway] | None = None,
) -> int:
    """``gatetrace gateway --config FILE``: load, serve until a signal; the exit code.

    ``admin_token`` is used when the config has no ``admin.tokenFile``; ``environ`` (the
    CLI passes ``os.environ``) gives the OpenTelemetry resource variables."""
    try:
        settings = _config.load_config(config_path)
        token = read_token(settings, admin_token)
    except (_config.ConfigError, StartupError) as e:
        _log.error("%s", e)
        return 2
    resource = gateway_resource(settings, environ or {})
    for problem in resource.problems:
        _log.warning("%s", problem)
    if resource.service_name != settings.service:
        settings = settings.model_copy(update={"service": resource.service_name})

    def announce(gateway: Gateway) -> None:
        proxy_app.tune_collector()  # the process's long-lived objects exist now
        print(f"gateway: {gateway.proxy_url}", flush=True)
        print(f"admin: {gateway.admin_url}", flush=True)
        for label, url in (("metrics", gateway.metrics_url), ("query", gateway.query_url)):
            if url is not None:
                print(f"{label}: {url}", flush=True)

    try:
        await serve(settings, token=token, on_started=announce, resource=resource, make=make)
    except StartupError as e:
        _log.error("%s", e)
        return 1
    return 0
