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


def _upstream_pattern() -> str:
    """The grammar :func:`gatetrace.gateway.config._check_upstream` lets through, as a
    regular expression (Go's RE2 and Python's agree on it): a host, a port 0-65535, a
    bracketed IPv6 literal that is one, no query or fragment."""
    h16 = "[0-9A-Fa-f]{1,4}"
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ls32 = f"(?:{h16}:{h16}|{octet}(?:\\.{octet}){{3}})"

    def head(n: int) -> str:
        return f"(?:(?:{h16}:){{0,{n}}}{h16})?" if n else f"(?:{h16})?"

    ipv6 = "|".join(
        [
            f"(?:{h16}:){{6}}{ls32}",
            f"::(?:{h16}:){{5}}{ls32}",
            f"{head(0)}::(?:{h16}:){{4}}{ls32}",
            f"{head(1)}::(?:{h16}:){{3}}{ls32}",
            f"{head(2)}::(?:{h16}:){{2}}{ls32}",
            f"{head(3)}::{h16}:{ls32}",
            f"{head(4)}::{ls32}",
            f"{head(5)}::{h16}",
            f"{head(6)}::",
        ]
    )
    host = f"(?:\\[(?:{ipv6})\\]|[^/?#\\s@:\\[\\]]+)"
    port = (
        "(?::0*(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
        "|6553[0-5])?)?"
    )
    return f"^https?://(?:[^/?#\\s\\[\\]]*@)?{host}{port}(?:/[^?#\\s]*)?$"


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
    # the model's own pattern only sketches an URL; its validator checks host and port
    cleaned["properties"]["upstream"]["pattern"] = _upstream_pattern()
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
