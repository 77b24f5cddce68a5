"""The admin protocol between the operator and a gateway, written once.

``PUT /admin/v1/tracing`` carries ``{revision, config[, sources]}``, ``sources`` being the
policies the config was merged from, lowest precedence first, each ``{namespace, name}``
(:func:`source_entries`; the operator's ConfigMap document carries the same list). The
gateway answers
``200 {revision, version, changed}``, ``400`` (not a JSON object), ``409 {error,
runningRevision}`` (an older revision, or the same one with other content), ``413`` (too
large) or ``422 {errors: [{loc, msg}]}``. ``GET /admin/v1/tracing`` answers ``{revision,
version, appliedAt, config (redacted), sources}`` or ``404`` while nothing is loaded.
Revisions are int64. The gateway (``gateway/admin.py``, ``gateway/tracing_apply.py``) and
the operator (``operator/delivery.py``) both use what is here.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from gatetrace.policy import errors as _errors
from gatetrace.policy import messages as _messages

__all__ = [
    "MAX_REVISION",
    "TRACING_PATH",
    "PutBody",
    "Running",
    "SourceRef",
    "error_detail",
    "parse_put",
    "parse_running",
    "put_body",
    "revision_problem",
    "running_body",
    "source_entries",
]

TRACING_PATH: Final = "/admin/v1/tracing"
MAX_REVISION: Final = 2**63 - 1
"""Revisions are int64 (the operator's, Kubernetes', every JSON reader's safe range)."""
_PUT_KEYS: Final = frozenset({"revision", "config", "version", "sources"})


def revision_problem(value: object) -> str | None:
    """Why ``value`` is not a revision (None if it is one)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REVISION:
        return "must be an integer from 0 to 2^63-1 (int64), got " + _messages.echo(value)
    return None


@dataclass(frozen=True, slots=True)
class PutBody:
    """A valid ``PUT`` body."""

    revision: int
    config: Any
    sources: Sequence[Mapping[str, Any]] = ()


class SourceRef(Protocol):
    """A policy a config came from (the operator's ``PolicyRef``)."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...


def source_entries(refs: Iterable[SourceRef]) -> tuple[dict[str, str], ...]:
    """The ``sources`` of a push body or ConfigMap document: ``{namespace, name}`` per policy."""
    return tuple({"namespace": ref.namespace, "name": ref.name} for ref in refs)


def put_body(
    revision: int, config: Mapping[str, Any], sources: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """What the operator sends (NOT redacted: it carries resolved Secrets); ``sources``
    from :func:`source_entries`, left out when there are none."""
    body: dict[str, Any] = {"revision": revision, "config": dict(config)}
    if sources:
        body["sources"] = [dict(source) for source in sources]
    return body


def parse_put(document: Any) -> PutBody:
    """The body as the gateway reads it; raise :class:`errors.ValidationFailed` naming each
    bad field (``TypeError`` when it is not a JSON object at all: a 400)."""
    if not isinstance(document, dict):
        raise TypeError(
            f"body must be a JSON object {{revision, config}}, got {type(document).__name__}"
        )
    problems = [
        _errors.FieldError(key, "unknown field (expected revision, config, sources)")
        for key in sorted(set(document) - _PUT_KEYS)
    ]
    revision = document.get("revision")
    if "revision" not in document:
        problems.append(_errors.FieldError("revision", "field required"))
    else:
        problem = revision_problem(revision)
        if problem is not None:
            problems.append(_errors.FieldError("revision", problem))
    if "config" not in document:
        problems.append(_errors.FieldError("config", "field required"))
    sources = document.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        problems.append(_errors.FieldError("sources", "must be a list of objects"))
    if problems:
        raise _errors.ValidationFailed(problems)
    assert isinstance(revision, int)
    return PutBody(revision, document["config"], tuple(sources))


@dataclass(frozen=True, slots=True)
class Running:
    """What a gateway runs (the ``GET`` answer the operator reads)."""

    revision: int
    version: str


def running_body(
    revision: int,
    version: str,
    applied_at: str,
    redacted_config: Mapping[str, Any],
    sources: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The gateway's ``GET`` answer (the config already redacted by the caller)."""
    return {
        "revision": revision,
        "version": version,
        "appliedAt": applied_at,
        "config": dict(redacted_config),
        "sources": list(sources),
    }


def parse_running(body: Any) -> Running | None:
    """The revision and version of a ``GET`` answer; None if it is not one."""
    if not isinstance(body, dict):
        return None
    revision = body.get("revision")
    if revision_problem(revision) is not None:
        return None
    assert isinstance(revision, int)
    version = body.get("version")
    return Running(revision, version if isinstance(version, str) else "")


def error_detail(text: str) -> str:
    """A one-line summary of an error answer (``422`` field errors, ``409``/``400`` message)."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(body, dict):
        found = body.get("errors")
        if isinstance(found, list) and found:
            parts = []
            for error in found[:5]:
                if isinstance(error, dict):
                    loc = error.get("loc", "")
                    if isinstance(loc, list):
                        loc = ".".join(str(p) for p in loc)
                    parts.append(f"{loc}: {error.get('msg', '')}")
            return "; ".join(parts)
        for key in ("message", "error"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:300]
    return text[:300]
