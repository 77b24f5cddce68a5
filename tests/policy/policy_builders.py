"""Small builders for policy tests: policies from dicts, pods, wire lookups."""

import datetime
from typing import Any

from gatetrace.policy import effective, model

ROOT_NS = "gatetrace-system"
T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def pol(
    namespace: str, name: str, spec: dict[str, Any], *, age: int = 0, generation: int = 1
) -> effective.PolicySource:
    """A policy created ``age`` seconds after T0 (larger is newer)."""
    return effective.PolicySource(
        namespace=namespace,
        name=name,
        spec=model.TracingPolicySpec.model_validate(spec),
        generation=generation,
        creation_timestamp=T0 + datetime.timedelta(seconds=age),
    )


def pod(namespace: str, name: str = "gw-0", **labels: str) -> effective.GatewayPod:
    """A gateway pod; labels given as keyword arguments (``app="gw"``)."""
    return effective.GatewayPod(namespace, name, labels)


def at(wire: Any, path: str) -> Any:
    """``wire["a"]["b"][0]`` for path ``a.b.0``."""
    for part in path.split("."):
        wire = wire[int(part)] if isinstance(wire, list) else wire[part]
    return wire


GW = {"app": "gw"}
SELECT_GW = {"selector": {"matchLabels": GW}}
