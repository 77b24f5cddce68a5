"""Hiding secret values from every human rendering of a config.

The effective config carries resolved Secret values (reporter headers, PEM
material of a reporter's ``tls``); logs, the admin ``GET``, the trace page,
``explain`` and status must never show them.  Every reporter header value is
treated as secret: exporters' headers are almost always credentials, and a
name is enough to debug with.  Inline PEM (``tls.ca``, ``cert``, ``key``) is
replaced as a whole: a key is a secret, and a certificate says nothing
useful in a few KiB of base64 (file paths and ``secretName`` stay).  Reporter
endpoints keep their host and path but lose URL userinfo and the values of
query parameters whose names look secret (:func:`redact_url`).
"""

from collections.abc import Mapping
from typing import Any

from gatetrace.policy import messages, model

REDACTED = messages.REDACTED
_PEM_FIELDS = frozenset({"ca", "cert", "key"})


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the values of secret-looking query parameters
    replaced by :data:`REDACTED` (an endpoint such as ``https://u:p@host/v1?api_key=..``)."""
    return messages.redact_url(url)


def _redact_reporter(reporter: Any) -> Any:
    if not isinstance(reporter, Mapping):
        return reporter
    out = dict(reporter)
    if isinstance(out.get("headers"), Mapping):
        out["headers"] = dict.fromkeys(out["headers"], REDACTED)
    if isinstance(out.get("endpoint"), str):
        out["endpoint"] = redact_url(out["endpoint"])
    tls = out.get("tls")
    if isinstance(tls, Mapping):
        out["tls"] = {k: REDACTED if k in _PEM_FIELDS else v for k, v in tls.items()}
    return out


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
