"""Hiding secret values from every human rendering of a config.

The effective config carries resolved Secret values (``otlpHttp`` headers);
logs, the admin ``GET``, ``explain`` and status must never show them.  Every
reporter header value is treated as secret: exporters' headers are almost
always credentials, and a name is enough to debug with.
"""

from collections.abc import Mapping
from typing import Any

from gatetrace.policy import model

REDACTED = "<redacted>"


def _redact_reporter(reporter: Any) -> Any:
    if isinstance(reporter, Mapping) and isinstance(reporter.get("headers"), Mapping):
        return {**reporter, "headers": dict.fromkeys(reporter["headers"], REDACTED)}
    return reporter


def redact(config: model.TracingConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``config`` (model or wire dict) with header values redacted."""
    if isinstance(config, model.TracingConfig):
        wire: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    else:
        wire = dict(config)
    reporters = wire.get("reporters")
    if isinstance(reporters, list):
        wire["reporters"] = [_redact_reporter(r) for r in reporters]
    return wire
