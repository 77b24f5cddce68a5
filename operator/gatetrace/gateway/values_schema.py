"""The Helm chart's ``values.schema.json`` part for ``gateway.routes``, derived from
:class:`gatetrace.gateway.config.RouteConfig`, so ``helm install`` refuses the routes the
gateway would refuse at start (instead of a pod in CrashLoopBackOff).

``python -m gatetrace.gateway.values_schema charts/gatetrace/values.schema.json`` writes it
into the chart's schema; a test keeps the two equal. Rules across routes and ports
(unique names and prefixes, ``port != adminPort``) cannot be said in JSON Schema: the
chart's gateway template checks them with ``fail``.
"""

import json
import pathlib
import sys
from typing import Any

from gatetrace.gateway import config as _config

__all__ = ["route_schema", "write"]

_DROP = frozenset({"title", "default"})


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items() if k not in _DROP}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def route_schema() -> dict[str, Any]:
    """JSON Schema (draft-07 subset helm understands) of one route in the chart's values."""
    schema = _config.RouteConfig.model_json_schema(by_alias=True, mode="validation")
    cleaned: dict[str, Any] = _clean(schema)
    namespace = cleaned["properties"]["namespace"]
    # null is how values files unset a key; a string must be a namespace name
    strings = [branch for branch in namespace.pop("anyOf") if branch.get("type") == "string"]
    namespace.update(strings[0])
    # the gateway answers 400 for any prefix it cannot match: keep its grammar exact
    return cleaned


def write(path: pathlib.Path) -> bool:
    """Put :func:`route_schema` into the chart schema at ``path``; True if it changed."""
    document = json.loads(path.read_text())
    gateway = document["properties"]["gateway"]["properties"]
    wanted = {"type": "array", "items": route_schema()}
    if gateway.get("routes") == wanted:
        return False
    gateway["routes"] = wanted
    path.write_text(json.dumps(document, indent=2) + "\n")
    return True


if __name__ == "__main__":
    target = pathlib.Path(
        sys.argv[1] if len(sys.argv) > 1 else "charts/gatetrace/values.schema.json"
    )
    print(f"{target}: {'updated' if write(target) else 'unchanged'}")
