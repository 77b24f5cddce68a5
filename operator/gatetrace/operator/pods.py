"""Which pods are gateways, and how to reach their admin API.

The convention (documented in the README):

- a pod labelled ``gatetrace.dev/gateway: <name>`` is a pod of gateway
  ``<name>``; the gateway is identified by (pod namespace, name) and its
  ConfigMap is ``gatetrace-<name>`` in that namespace;
- the admin port is the annotation ``gatetrace.dev/admin-port``, else the
  container port named ``gt-admin``, else 9901;
- a pod receives configs once it has a pod IP and its ``Ready`` condition is
  ``True`` (the gateway's readiness does not depend on having a config).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADMIN_PORT_ANNOTATION",
    "ADMIN_PORT_NAME",
    "DEFAULT_ADMIN_PORT",
    "GATEWAY_LABEL",
    "GatewayTarget",
    "configmap_name",
    "pod_from_object",
]

GATEWAY_LABEL = "gatetrace.dev/gateway"
ADMIN_PORT_ANNOTATION = "gatetrace.dev/admin-port"
ADMIN_PORT_NAME = "gt-admin"
DEFAULT_ADMIN_PORT = 9901


@dataclass(frozen=True, slots=True)
class GatewayTarget:
    """What the operator needs to know about one gateway pod."""

    namespace: str
    name: str
    gateway: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    admin_port: int = DEFAULT_ADMIN_PORT
    ready: bool = False
    uid: str = ""
    admin_base: str | None = None
    """An explicit admin base URL (standalone mode); overrides ip/port."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def gateway_key(self) -> tuple[str, str]:
        return (self.namespace, self.gateway)

    @property
    def admin_url(self) -> str | None:
        if self.admin_base is not None:
            return self.admin_base.rstrip("/")
        if not self.ip:
            return None
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.admin_port}"

    @property
    def deliverable(self) -> bool:
        return self.ready and (self.ip is not None or self.admin_base is not None)


def configmap_name(gateway: str) -> str:
    return f"gatetrace-{gateway}"


def _admin_port(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> int:
    annotations = meta.get("annotations") or {}
    raw = annotations.get(ADMIN_PORT_ANNOTATION)
    if raw is not None:
        try:
            port = int(str(raw))
        except ValueError:
            port = 0
        if 0 < port < 65536:
            return port
    for container in spec.get("containers") or ():
        for port_spec in container.get("ports") or ():
            if port_spec.get("name") == ADMIN_PORT_NAME:
                value = port_spec.get("containerPort")
                if isinstance(value, int) and 0 < value < 65536:
                    return value
    return DEFAULT_ADMIN_PORT


def _is_ready(status: Mapping[str, Any]) -> bool:
    if status.get("phase") != "Running":
        return False
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def pod_from_object(obj: Mapping[str, Any]) -> GatewayTarget | None:
    """A :class:`GatewayTarget` from a Pod object (dict), or None if it is no gateway pod."""
    meta = obj.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    gateway = labels.get(GATEWAY_LABEL)
    if not gateway or meta.get("deletionTimestamp"):
        return None
    status = obj.get("status") or {}
    return GatewayTarget(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        gateway=str(gateway),
        labels=labels,
        ip=status.get("podIP") or None,
        admin_port=_admin_port(meta, obj.get("spec") or {}),
        ready=_is_ready(status),
        uid=str(meta.get("uid") or ""),
    )
