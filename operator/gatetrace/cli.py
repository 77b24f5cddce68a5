"""The ``gatetrace`` command: one subcommand per registration in :data:`SUBCOMMANDS`.

Each registration adds its arguments to an argparse sub-parser and returns
the function that runs it (``args -> exit code``).  Other parts add their own
(``gateway``, ``operator``, ``demo``) by adding an entry to the dict.
Environment variables are read only here, at the edge.
"""

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from gatetrace.demo import command as demo_command
from gatetrace.gateway import command as gateway_command
from gatetrace.operator import command as operator_command
from gatetrace.policy import cli as policy_cli

DESCRIPTION = (
    "gatetrace: tracing for API gateways, steered live from Kubernetes TracingPolicies. "
    "Run 'gatetrace COMMAND --help' for a command's options."
)
"""The top-level ``--help`` text: plain text (argparse prints it as is, so no reST)."""

Runner = Callable[[argparse.Namespace], int]
Registration = Callable[[argparse.ArgumentParser], Runner]


def _emit(result: tuple[int, str]) -> int:
    code, text = result
    (sys.stdout if code == 0 else sys.stderr).write(text)
    return code


def _register_crds(parser: argparse.ArgumentParser) -> Runner:
    parser.description = "Print the TracingPolicy CustomResourceDefinition (YAML)."
    return lambda _args: _emit(policy_cli.crds())


def _run_validate(args: argparse.Namespace) -> int:
    code, text = policy_cli.validate(args.files)
    sys.stdout.write(text)
    return code


def _run_explain(args: argparse.Namespace) -> int:
    if args.service is not None:
        if not args.service or len(args.service) > 256:
            sys.stderr.write("--service: a service name of 1 to 256 characters\n")
            return 2
        return _emit(
            policy_cli.explain_service(
                args.policies, args.service, root_namespace=args.root_namespace
            )
        )
    if args.pod_namespace is None:
        sys.stderr.write("explain: --pod-namespace (a gateway pod) or --service NAME is needed\n")
        return 2
    try:
        labels = policy_cli.parse_labels(args.pod_labels)
    except ValueError as e:
        sys.stderr.write(f"--pod-labels: {e}\n")
        return 2
    return _emit(
        policy_cli.explain(
            args.policies,
            pod_namespace=args.pod_namespace,
            pod_labels=labels,
            route_namespace=args.route_namespace,
            root_namespace=args.root_namespace,
        )
    )


def _register_policy(parser: argparse.ArgumentParser) -> Runner:
    parser.description = "Validate TracingPolicy files or explain an effective config."
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="validate TracingPolicy YAML files")
    validate.add_argument("files", nargs="+", metavar="FILE", help="files or directories")
    validate.set_defaults(run=_run_validate)
    explain = actions.add_parser(
        "explain", help="show a gateway pod's effective config, or a service's strategy"
    )
    explain.add_argument("--policies", required=True, metavar="DIR", help="policy YAML directory")
    explain.add_argument("--pod-namespace", metavar="NS", help="the gateway pod's namespace")
    explain.add_argument(
        "--service",
        metavar="NAME",
        help="show the remote sampling strategy served to this service (spec.services)",
    )
    explain.add_argument("--pod-labels", default="", metavar="K=V,...")
    explain.add_argument("--route-namespace", metavar="N", help="also show sampling for N")
    explain.add_argument(
        "--root-namespace",
        default=policy_cli.DEFAULT_ROOT_NAMESPACE,
        metavar="NS",
        help="the operator's root namespace (cluster defaults)",
    )
    explain.set_defaults(run=_run_explain)

    def run(args: argparse.Namespace) -> int:
        action: Runner = args.run
        return action(args)

    return run


SUBCOMMANDS: dict[str, tuple[str, Registration]] = {
    "demo": ("the embedded demo: gateway, services, live policy, report", demo_command.register),
    "crds": ("print the TracingPolicy CRD", _register_crds),
    "policy": ("validate or explain TracingPolicies", _register_policy),
    "operator": ("run the operator (kopf) or its standalone mode", operator_command.register),
    "gateway": ("run the traced gateway (proxy + admin/query API)", gateway_command.register),
}
"""name -> (help, registration). Add subcommands here."""


def _version() -> str:
    try:
        return importlib.metadata.version("gatetrace")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="gatetrace", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"gatetrace {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, register) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(runner=register(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gatetrace`` console script."""
    args = build_parser().parse_args(argv)
    runner: Runner = args.runner
    return runner(args)


if __name__ == "__main__":
    sys.exit(main())
