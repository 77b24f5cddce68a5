"""``gatetrace gateway --config FILE``: the subcommand registration for :mod:`gatetrace.cli`."""

import argparse
import logging
import os
from collections.abc import Callable

from gatetrace.gateway import config, event_loop, server, supervisor

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the gateway's arguments to ``parser``; return the runner."""
    parser.description = (
        "Run the traced reverse proxy and its admin/query API. The admin token comes from "
        f"admin.tokenFile or ${server.TOKEN_ENV}. Resource attributes: OTEL_RESOURCE_ATTRIBUTES, "
        "OTEL_SERVICE_NAME (OpenTelemetry SDK conventions)."
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="gateway config (YAML)")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )

    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(
            level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        token = os.environ.get(server.TOKEN_ENV)
        try:
            loop = event_loop.resolve(config.load_config(args.config).event_loop)
        except config.ConfigError:
            loop = "asyncio"  # run_gateway reports the config's problems
        except event_loop.LoopUnavailableError as e:
            logging.getLogger(__name__).error("%s", e)
            return 2
        return event_loop.run(
            server.run_gateway(
                args.config,
                admin_token=token,
                environ=os.environ,
                make=supervisor.gateway_for,
            ),
            loop,
        )

    return run
