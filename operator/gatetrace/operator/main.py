"""Running the operator: under kopf against a cluster, or standalone."""

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp.web
import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gatetrace.operator import core as _core
from gatetrace.operator import delivery as _delivery
from gatetrace.operator import handlers as _handlers
from gatetrace.operator import metrics as _metrics
from gatetrace.operator import planner as _planner
from gatetrace.operator import policy_mirror as _policy_mirror
from gatetrace.operator import sampling_server as _sampling_server
from gatetrace.operator import settings as _settings
from gatetrace.operator import standalone as _standalone
from gatetrace.runtime import metrics as _runtime_metrics

__all__ = ["run_kopf", "run_standalone"]

log = logging.getLogger("gatetrace.operator")


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


@contextlib.asynccontextmanager
async def _serving(listen: str | None, app: aiohttp.web.Application, **runner_args: Any) -> Any:
    if not listen:
        yield None
        return
    runner = aiohttp.web.AppRunner(app, access_log=None, **runner_args)
    await runner.setup()
    host, port = _split_listen(listen)
    site = aiohttp.web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield site
    finally:
        await runner.cleanup()


def _metrics_app(registry: _runtime_metrics.Registry) -> aiohttp.web.Application:
    async def metrics(_request: aiohttp.web.Request) -> aiohttp.web.Response:
        text = _runtime_metrics.render_prometheus([registry])
        return aiohttp.web.Response(
            body=text.encode(), headers={"Content-Type": _runtime_metrics.CONTENT_TYPE}
        )

    app = aiohttp.web.Application()
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def _servers(
    settings: _settings.OperatorSettings,
    registry: _runtime_metrics.Registry,
    view: _sampling_server.PolicyView,
) -> Any:
    """The operator's own HTTP listeners: /metrics, and the remote sampling API."""
    strategies = _sampling_server.StrategyServer(view, settings.root_namespace)
    async with (
        _serving(settings.metrics_listen, _metrics_app(registry)),
        _serving(settings.sampling_listen, strategies.app(), **_sampling_server.RUNNER_ARGS),
    ):
        yield strategies


def _connection_from_client(config: Any) -> kopf.ConnectionInfo:
    """kopf credentials from the client configuration loaded from ``--kubeconfig``."""
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


class KubeconfigError(Exception):
    """No usable cluster credentials; the message is one line saying what to do."""


def load_client_config(kubeconfig: str | None) -> None:
    """Load the client configuration: ``kubeconfig``, else in-cluster, else the default
    kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``); :class:`KubeconfigError` if none."""
    if kubeconfig:
        if not os.path.isfile(kubeconfig):
            raise KubeconfigError(
                f"--kubeconfig {kubeconfig}: no such file (give the path of a kubeconfig, "
                "or run in a cluster)"
            )
        try:
            k8s_config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except Exception as e:  # any failure to read it (YAML, keys, files): one clear line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise KubeconfigError(
                f"--kubeconfig {kubeconfig}: not a usable kubeconfig: {first}"
            ) from None
        return
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        return
    except k8s_config.ConfigException:
        pass
    default = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception as e:  # any failure to read it: one clear line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KubeconfigError(
            f"no cluster credentials: not running in a cluster and {default} is not usable "
            f"({first}); pass --kubeconfig FILE, or use --standalone DIR without a cluster"
        ) from None


async def run_kopf(
    settings: _settings.OperatorSettings,
    *,
    kubeconfig: str | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """The kopf operator until ``stop`` (or SIGTERM/SIGINT, which kopf handles)."""
    load_client_config(kubeconfig)
    formats = {"json": kopf.LogFormat.JSON, "full": kopf.LogFormat.FULL}
    kopf.configure(log_format=formats.get(settings.log_format, kopf.LogFormat.PLAIN))
    api = k8s.ApiClient()
    state = _handlers.OperatorState(settings, api)
    registry = _handlers.build_registry(state)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if kubeconfig:
            # kopf's login_via_client would reload the *default* kubeconfig
            return _connection_from_client(k8s.Configuration.get_default_copy())
        return kopf.login_via_client(**kwargs)

    # every replica answers the sampling API from its own watch (kopf pauses standbys)
    mirror = _policy_mirror.PolicyMirror(api, settings.watched_namespaces)
    if settings.sampling_listen:
        mirror.start()
    try:
        async with _servers(settings, state.reconciler.metrics.registry, mirror):
            await _run_kopf_operator(settings, registry, stop)
    finally:
        mirror.stop()


async def _run_kopf_operator(
    settings: _settings.OperatorSettings, registry: Any, stop: asyncio.Event | None
) -> None:
    await kopf.operator(
        registry=registry,
        clusterwide=not settings.watched_namespaces,
        namespaces=settings.watched_namespaces,
        standalone=settings.peering_name is None,
        peering_name=settings.peering_name,
        priority=settings.priority,
        liveness_endpoint=settings.liveness_endpoint,
        stop_flag=stop,
    )


async def run_standalone(
    policy_dir: pathlib.Path,
    gateways: Sequence[_standalone.GatewaySpec],
    token: str,
    *,
    settings: _settings.OperatorSettings,
    namespace: str = "default",
    config_dir: pathlib.Path | None = None,
    status_dir: pathlib.Path | None = None,
    once: bool = False,
    poll_interval: float = 1.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Standalone mode. With ``once``: one converge, a JSON summary on stdout,
    exit code 0 only when every gateway applied its config."""
    for made in (config_dir, status_dir):
        if made is not None:
            made.mkdir(parents=True, exist_ok=True)
    folder = _standalone.PolicyFolder(policy_dir, default_namespace=namespace)
    sink = _standalone.FileSink(config_dir=config_dir, status_dir=status_dir)
    # the last valid content of each policy outlives this process only in the status folder;
    # without one, pods an invalid policy may reach are not pushed at all
    store = _standalone.LastValidStore(status_dir)
    client = _delivery.AdminClient(lambda: token)
    pusher = _delivery.Pusher(
        client,
        concurrency=settings.push_concurrency,
        retry=_delivery.RetryPolicy(attempts=settings.push_attempts, timeout=settings.push_timeout),
    )
    metrics = _metrics.OperatorMetrics()
    reconciler = _core.Reconciler(
        sink,
        pusher,
        _planner.IndexPlanner(settings.root_namespace),
        metrics=metrics,
        hold_back_invalid=status_dir is None,
        root_namespace=settings.root_namespace,
    )
    try:
        if once:
            for gateway in gateways:
                reconciler.upsert_pod(gateway.pod())
            _standalone.sync_folder(reconciler, folder, store=store)
            await reconciler.converge()
            summary = summarize(reconciler)
            sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
            return _once_verdict(summary)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with _servers(settings, metrics.registry, reconciler):
            await _standalone.run_standalone(
                reconciler,
                folder,
                gateways,
                stop,
                poll_interval=poll_interval,
                drift_interval=settings.drift_interval,
                retry_interval=settings.retry_interval,
                store=store,
            )
        return 0
    finally:
        await client.close()


def _once_verdict(summary: Mapping[str, Any]) -> int:
    """0 only when every policy is valid and every pod applied; otherwise 1, and stderr
    says which."""
    problems = [
        f"policy {name} is invalid: {'; '.join(policy['errors'][:3])}"
        for name, policy in summary["policies"].items()
        if not policy["valid"]
    ]
    problems += [
        f"pod {pod['pod']} is {pod['state']}: {pod['message']}"
        for pod in summary["pods"]
        if pod["state"] != "Applied"
    ]
    for problem in problems:
        sys.stderr.write(problem + "\n")
    return 1 if problems else 0


def summarize(reconciler: _core.Reconciler) -> dict[str, Any]:
    """Pods with their revision/state and policies with their conditions."""
    pods = []
    for key, pod in sorted(reconciler.pods.items()):
        state = reconciler.pod_states.get(key) or _core.PodState()
        plan = reconciler.plans.get(key)
        pods.append(
            {
                "pod": key,
                "gateway": pod.gateway,
                "revision": state.revision,
                "version": state.version,
                "state": state.state,
                "message": state.message,
                "sources": [str(s) for s in plan.sources] if plan else [],
            }
        )
    policies = {}
    for ref, record in sorted(reconciler.policies.items()):
        status = reconciler.last_status(ref) or {}
        policies[ref.key] = {
            "valid": record.valid,
            "stale": record.stale,
            "errors": [f"{loc}: {msg}" for loc, msg in record.errors],
            "conditions": {
                c["type"]: f"{c['status']} ({c['reason']}) {c.get('message', '')}".strip()
                for c in status.get("conditions") or ()
            },
        }
    return {"pods": pods, "policies": policies}
