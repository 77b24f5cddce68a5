"""Who emits the spans: the resource attributes of this process.

OpenTelemetry resource semantic conventions (``service.*``, ``telemetry.sdk.*``,
``k8s.*``, ``host.name``, ``process.*``) and the SDK environment conventions:

* ``OTEL_RESOURCE_ATTRIBUTES``: ``key=value`` pairs separated by commas, values
  percent-decoded (OpenTelemetry resource SDK spec). A malformed value is discarded
  as a whole, as the spec asks, and reported in :attr:`ProcessResource.problems`
  naming the variable and the entry;
* ``OTEL_SERVICE_NAME``: the service name, over ``service.name`` of the former.

The Helm chart fills ``OTEL_RESOURCE_ATTRIBUTES`` from the Downward API
(``k8s.pod.name``, ``k8s.pod.uid``, ``k8s.namespace.name``, ``k8s.node.name``,
``k8s.deployment.name``, ``k8s.container.name``); outside Kubernetes the process
fills what it knows (``host.name``, ``process.pid``, ``process.runtime.*``).
``service.instance.id``, when not given, follows the service conventions: a UUID v5
of ``<namespace>.<pod>.<container>`` in Kubernetes (stable across restarts of the
same pod), else a random UUID v4 for this process.

Environment variables are read by the caller (the CLI, the kit's constructor) and
passed in as a mapping: this module only interprets them.
"""

import os
import platform
import socket
import sys
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gatetrace.runtime import span as _span

__all__ = [
    "RESOURCE_ENV",
    "SCHEMA_URL",
    "SERVICE_ENV",
    "ProcessResource",
    "detect",
    "parse_resource_attributes",
]

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.26.0"
"""The semantic conventions version our attribute names follow (OTLP ``schema_url``)."""
RESOURCE_ENV: Final = "OTEL_RESOURCE_ATTRIBUTES"
SERVICE_ENV: Final = "OTEL_SERVICE_NAME"
_INSTANCE_NAMESPACE: Final = uuid.UUID("4d63009a-8d0f-11ee-aad7-4c796ed8e320")
"""The UUID v5 namespace the service conventions give for ``service.instance.id``."""
_MAX_ATTRIBUTES: Final = 128
_MAX_VALUE: Final = 4096


@dataclass(frozen=True, slots=True)
class ProcessResource:
    """The detected resource: its service name, attributes in order, and what was wrong."""

    service_name: str
    attributes: tuple[tuple[str, _span.TagValue], ...]
    problems: tuple[str, ...] = field(default=())
    """Messages naming the environment variable and the entry that was discarded."""

    def get(self, key: str) -> _span.TagValue | None:
        for name, value in self.attributes:
            if name == key:
                return value
        return None


def parse_resource_attributes(text: str) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` as a dict; ``ValueError`` naming the bad entry.

    Entries are ``key=value`` separated by ``,``; surrounding spaces are trimmed;
    ``%XX`` in values is decoded (a literal ``,`` or ``=`` in a value must be encoded);
    an empty entry (``a=1,,b=2``, a trailing comma) is skipped.
    """
    found: dict[str, str] = {}
    for index, raw in enumerate(text.split(",")):
        entry = raw.strip()
        if not entry:
            continue
        key, eq, value = entry.partition("=")
        key = key.strip()
        where = f"{RESOURCE_ENV}: entry {index + 1} ({entry[:64]!r})"
        if not eq:
            raise ValueError(f"{where} has no '=': write key=value")
        if not key:
            raise ValueError(f"{where} has an empty key")
        if not key.isascii() or not key.isprintable() or " " in key:
            raise ValueError(f"{where}: the key must be printable ASCII without spaces")
        try:
            decoded = urllib.parse.unquote(value.strip(), errors="strict")
        except UnicodeDecodeError as e:
            raise ValueError(f"{where}: the percent-encoded value is not UTF-8") from e
        if len(decoded) > _MAX_VALUE:
            raise ValueError(f"{where}: the value is longer than {_MAX_VALUE} characters")
        found[key] = decoded
        if len(found) > _MAX_ATTRIBUTES:
            raise ValueError(f"{RESOURCE_ENV}: more than {_MAX_ATTRIBUTES} attributes")
    return found


def _instance_id(attrs: Mapping[str, str]) -> str:
    namespace = attrs.get("k8s.namespace.name")
    pod = attrs.get("k8s.pod.name")
    container = attrs.get("k8s.container.name")
    if namespace and pod and container:
        return str(uuid.uuid5(_INSTANCE_NAMESPACE, f"{namespace}.{pod}.{container}"))
    return str(uuid.uuid4())


def detect(
    environ: Mapping[str, str],
    *,
    default_service: str,
    component: str,
    explicit_service: bool = False,
    service_version: str | None = None,
    sdk_version: str = "",
) -> ProcessResource:
    """The resource of this process from ``environ`` (``os.environ`` at the edge).

    The service name: ``default_service`` when ``explicit_service`` (set in the
    process's own config), else ``OTEL_SERVICE_NAME``, else ``service.name`` from
    ``OTEL_RESOURCE_ATTRIBUTES``, else ``default_service``. Attributes given in
    ``OTEL_RESOURCE_ATTRIBUTES`` win over detected ones.
    """
    problems: list[str] = []
    given: dict[str, str] = {}
    text = environ.get(RESOURCE_ENV, "")
    if text.strip():
        try:
            given = parse_resource_attributes(text)
        except ValueError as e:
            problems.append(f"{e}; the whole variable is ignored")
    service = default_service
    if not explicit_service:
        env_service = environ.get(SERVICE_ENV, "").strip()
        service = env_service or given.get("service.name", "") or default_service
    detected: dict[str, _span.TagValue] = {
        "service.instance.id": given.get("service.instance.id") or _instance_id(given),
        "telemetry.sdk.name": "gatetrace",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": sdk_version,
        "gatetrace.component": component,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
    }
    if service_version:
        detected["service.version"] = service_version
    for key, value in given.items():
        if key != "service.name":
            detected[key] = value
    ordered = sorted(detected.items())
    return ProcessResource(service, tuple(ordered), tuple(problems))
