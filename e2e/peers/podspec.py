"""What the pod runner reads out of a Pod: whether it is ours, a container's argv and
its environment (literal values, ConfigMap/Secret keys, the downward API's `fieldRef`
and `resourceFieldRef`, the service variables a kubelet adds).
"""

import base64
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

# The image's own environment (see the Dockerfile).
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
IMAGE_ENTRYPOINT = ["gatetrace"]

_SUFFIXES: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")

Lookup = Callable[[str, str], Mapping[str, Any] | None]


class SpecError(ValueError):
    """A pod field the runner cannot honour; the message names the field."""


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "256Mi", "1") as a number."""
    match = _QUANTITY.match(str(text))
    if match is None or match.group(2) not in _SUFFIXES:
        raise SpecError(f"quantity {text!r}: not understood")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])


def image_repository(image: str) -> str:
    """`repo[:tag][@digest]` -> repo (a port in the registry host is kept)."""
    name = image.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def is_ours(pod: Mapping[str, Any], repository: str) -> bool:
    """True when every container of the pod runs our image (init containers too)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    return bool(containers) and all(
        image_repository(str(c.get("image", ""))) == repository for c in containers
    )


def argv(container: Mapping[str, Any], bin_dir: Path) -> list[str]:
    """The container's command + args, the image's entrypoint when there is no command;
    a command found in the pod venv's bin folder runs from there."""
    command = list(container.get("command") or IMAGE_ENTRYPOINT)
    local = bin_dir / command[0]
    if "/" not in command[0] and local.exists():
        command[0] = str(local)
    return command + [str(a) for a in container.get("args") or []]


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A downward API `fieldRef.fieldPath` of the pod."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.podIPs": ",".join(p["ip"] for p in status.get("podIPs") or []),
    }
    if path in simple:
        return str(simple[path] or "")
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise SpecError(f"fieldRef.fieldPath {path!r}: not supported")


def resource_value(pod: Mapping[str, Any], ref: Mapping[str, Any], default: str) -> str:
    """A downward API `resourceFieldRef`: the container's request/limit over the
    divisor, rounded up (as the kubelet does)."""
    name = ref.get("containerName")
    containers = pod["spec"]["containers"]
    [container] = [c for c in containers if c["name"] == name] if name else containers[:1]
    kind, _, resource = str(ref["resource"]).partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if value is None:  # an unset limit is the node's allocatable
        value = default
    divisor = quantity(str(ref.get("divisor") or "1"))
    return str(math.ceil(quantity(str(value)) / divisor))


def _key_ref(kind: str, ref: Mapping[str, Any], lookup: Lookup) -> str | None:
    obj = lookup(kind, str(ref["name"]))
    data = (obj or {}).get("data") or {}
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise SpecError(f"{kind} {ref['name']} key {ref['key']!r}: not found")
    raw = data[ref["key"]]
    return base64.b64decode(raw).decode() if kind == "secret" else str(raw)


def _env_value(
    pod: Mapping[str, Any], var: Mapping[str, Any], lookup: Lookup, allocatable: Mapping[str, str]
) -> str | None:
    if "valueFrom" not in var:
        return str(var.get("value", ""))
    source = var["valueFrom"]
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        resource = str(ref["resource"]).partition(".")[2]
        return resource_value(pod, ref, allocatable.get(resource, "0"))
    if "configMapKeyRef" in source:
        return _key_ref("configmap", source["configMapKeyRef"], lookup)
    if "secretKeyRef" in source:
        return _key_ref("secret", source["secretKeyRef"], lookup)
    raise SpecError(f"env {var['name']}: valueFrom {sorted(source)} not supported")


def environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    lookup: Lookup,
    *,
    api_host: str,
    api_port: int,
    allocatable: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment: the image's, the service variables for the API
    server, then `envFrom` and `env` in order (later wins, `$(VAR)` expanded)."""
    env = dict(IMAGE_ENV)
    env["HOSTNAME"] = str(pod["metadata"]["name"])
    env |= {
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
        "KUBERNETES_PORT": f"tcp://{api_host}:{api_port}",
    }
    for source in container.get("envFrom") or []:
        kind = "configmap" if "configMapRef" in source else "secret"
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        obj = lookup(kind, str(ref.get("name")))
        data = (obj or {}).get("data") or {}
        if kind == "secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        env |= {f"{source.get('prefix', '')}{k}": str(v) for k, v in data.items()}
    for var in container.get("env") or []:
        value = _env_value(pod, var, lookup, allocatable)
        if value is not None:
            env[var["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), value
            )
    return env
