"""``gatetrace operator``: its arguments and how they become settings.

The command-line edge of the operator: the only place here that reads the
environment (``GATETRACE_ADMIN_TOKEN`` in standalone mode).
"""

import argparse
import asyncio
import os
import pathlib
import secrets
import sys
from collections.abc import Callable

from gatetrace.operator import main as _main
from gatetrace.operator import settings as _settings
from gatetrace.operator import standalone as _standalone

__all__ = ["register"]

DEFAULTS = _settings.OperatorSettings()


def register(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.description = (
        "Watch TracingPolicies and gateway pods and push each pod its effective config "
        "(kopf, in a cluster), or do the same from a folder of policy files (--standalone)."
    )
    add = parser.add_argument
    add("--standalone", metavar="DIR", type=pathlib.Path, help="policy folder (no Kubernetes)")
    add(
        "--gateway",
        action="append",
        default=[],
        metavar="NAME=URL[;k=v,...]",
        help="standalone: a gateway admin URL (repeatable), optional extra pod labels",
    )
    add(
        "--token-file",
        type=pathlib.Path,
        metavar="FILE",
        help="standalone: admin bearer token file (default: $GATETRACE_ADMIN_TOKEN)",
    )
    add(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only these namespaces (repeatable; default all). Standalone: the "
        "namespace of the gateways and of policies without one (first value)",
    )
    add(
        "--root-namespace",
        default=DEFAULTS.root_namespace,
        metavar="NS",
        help="namespace whose selector-less policy is the cluster default",
    )
    add(
        "--admin-token-secret",
        default=DEFAULTS.admin_token_secret,
        metavar="NS/NAME",
        help="Secret with the gateways' admin token (key 'token')",
    )
    add("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, then ~/.kube)")
    add("--peering", metavar="NAME", help="kopf peering name: run several replicas, one acts")
    add(
        "--priority",
        type=_priority,
        default=0,
        metavar="N|random",
        help="this replica's peering priority; replicas need distinct ones (kopf pauses "
        "every operator of a tied priority), so Deployments pass 'random'",
    )
    add("--drift-interval", type=float, default=DEFAULTS.drift_interval, metavar="SECONDS")
    add("--retry-interval", type=float, default=DEFAULTS.retry_interval, metavar="SECONDS")
    add("--push-timeout", type=float, default=DEFAULTS.push_timeout, metavar="SECONDS")
    add("--push-attempts", type=int, default=DEFAULTS.push_attempts)
    add("--push-concurrency", type=int, default=DEFAULTS.push_concurrency)
    add(
        "--liveness",
        default=DEFAULTS.liveness_endpoint,
        metavar="URL",
        help="kopf liveness endpoint ('' to disable)",
    )
    add(
        "--metrics-listen",
        default=DEFAULTS.metrics_listen,
        metavar="HOST:PORT",
        help="where /metrics is served ('' to disable)",
    )
    add(
        "--sampling-listen",
        default=DEFAULTS.sampling_listen or "",
        metavar="HOST:PORT",
        help="serve the Jaeger remote sampling API (/sampling?service=) from spec.services "
        "there, e.g. 0.0.0.0:5778 ('' to disable, the default)",
    )
    add(
        "--log-format",
        choices=["json", "full", "plain"],
        default=DEFAULTS.log_format,
        help="operator log lines: json (one object per line), full or plain",
    )
    add(
        "--config-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="standalone: write each gateway's config there (like its ConfigMap)",
    )
    add(
        "--status-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="standalone: write each policy's status there as JSON",
    )
    add(
        "--once",
        action="store_true",
        help="standalone: converge once, print a JSON summary, exit 0 only if all applied",
    )
    return run


def _priority(text: str) -> int:
    if text == "random":
        return secrets.randbelow(1_000_000) + 1
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'random'") from None


def _settings_from(args: argparse.Namespace) -> _settings.OperatorSettings:
    return _settings.OperatorSettings(
        root_namespace=args.root_namespace,
        namespaces=tuple(args.namespace) if not args.standalone else (),
        admin_token_secret=args.admin_token_secret,
        push_concurrency=args.push_concurrency,
        push_timeout=args.push_timeout,
        push_attempts=args.push_attempts,
        drift_interval=args.drift_interval,
        retry_interval=args.retry_interval,
        peering_name=args.peering,
        priority=args.priority,
        liveness_endpoint=args.liveness or None,
        metrics_listen=args.metrics_listen or None,
        sampling_listen=args.sampling_listen or None,
        log_format=args.log_format,
    )


def run(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    if args.standalone is None:
        if args.gateway:
            sys.stderr.write("--gateway needs --standalone DIR\n")
            return 2
        if args.kubeconfig and os.path.isdir(args.kubeconfig):
            sys.stderr.write(
                f"gatetrace operator: --kubeconfig {args.kubeconfig}: "
                "is a folder, not a kubeconfig file\n"
            )
            return 2
        try:
            _main.load_client_config(args.kubeconfig)  # fail fast, in one line
            asyncio.run(_main.run_kopf(settings, kubeconfig=args.kubeconfig))
        except _main.KubeconfigError as e:
            sys.stderr.write(f"gatetrace operator: {e}\n")
            return 2
        return 0
    namespace = args.namespace[0] if args.namespace else "default"
    try:
        gateways = [_standalone.parse_gateway(g, namespace=namespace) for g in args.gateway]
    except _standalone.StandaloneError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    if not gateways and not args.sampling_listen:
        sys.stderr.write(
            "--standalone needs at least one --gateway NAME=URL (or --sampling-listen, "
            "to serve only the services' remote sampling strategies)\n"
        )
        return 2
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            sys.stderr.write(f"--token-file: {e}\n")
            return 2
    else:
        token = os.environ.get("GATETRACE_ADMIN_TOKEN", "")
    if not token:
        sys.stderr.write("no admin token: give --token-file or set GATETRACE_ADMIN_TOKEN\n")
        return 2
    try:
        return asyncio.run(
            _main.run_standalone(
                args.standalone,
                gateways,
                token,
                settings=settings,
                namespace=namespace,
                config_dir=args.config_dir,
                status_dir=args.status_dir,
                once=args.once,
            )
        )
    except _standalone.StandaloneError as e:
        sys.stderr.write(f"{e}\n")
        return 2
