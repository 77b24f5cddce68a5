"""``gatetrace demo``: its arguments."""

import argparse
import asyncio
import logging
import pathlib
import sys
import urllib.parse
from collections.abc import Callable

from gatetrace.demo import run as _run

__all__ = ["register"]


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (port 1-65535), got {text!r}")
    return text


def _http_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    try:
        _ = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s)://HOST[:PORT]/... URL, got {text!r}")
    return text


def register(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.description = (
        "Run a gateway and traced demo services on 127.0.0.1, apply the demo policies "
        "through the standalone reconciler, send traffic and print a report. Needs no "
        "cluster and no backend."
    )
    add = parser.add_argument
    add(
        "--requests",
        type=_positive_int,
        default=200,
        metavar="N",
        help="requests per phase (default 200)",
    )
    add(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="requests in flight (default 8)",
    )
    add(
        "--policies",
        type=pathlib.Path,
        default=_run.POLICIES,
        metavar="DIR",
        help="TracingPolicy folder to apply (default: the demo policies, = examples/demo)",
    )
    add(
        "--error-rate",
        type=_rate,
        default=0.1,
        metavar="R",
        help="share of payments failing with 503 (default 0.1)",
    )
    add(
        "--change-policy",
        action="store_true",
        help="then raise the sampling rate live (no restart) and compare",
    )
    add(
        "--serve",
        action="store_true",
        help="keep running after the report (trace page, query API; edit policies live)",
    )
    add(
        "--jaeger-agent",
        type=_host_port,
        metavar="HOST:PORT",
        help="also report to a real Jaeger agent (UDP)",
    )
    add("--zipkin", type=_http_url, metavar="URL", help="also report to a real Zipkin")
    add("--otlp", type=_http_url, metavar="URL", help="also report to a real OTLP/HTTP endpoint")
    add("--seed", type=int, metavar="N", help="seed for a repeatable traffic mix")
    return run


def run(args: argparse.Namespace) -> int:
    if not args.policies.is_dir():
        sys.stderr.write(f"--policies: {args.policies} is not a folder\n")
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = _run.DemoOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        policies=args.policies,
        error_rate=args.error_rate,
        change_policy=args.change_policy,
        serve=args.serve,
        jaeger_agent=args.jaeger_agent,
        zipkin=args.zipkin,
        otlp=args.otlp,
        seed=args.seed,
    )
    try:
        asyncio.run(_run.run_demo(options, sys.stdout))
    except KeyboardInterrupt:
        return 130
    return 0
