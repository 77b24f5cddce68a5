"""The Kubernetes side of the operator: ConfigMaps, policy status, Events,
Secrets for reporter headers and TLS material, and listing what exists at start-up.

The official client is synchronous; every call runs in a worker thread so
the operator's event loop never blocks on the API server.
"""

import asyncio
import base64
import copy
import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client as k8s
from kubernetes.client import exceptions as k8s_exceptions

from gatetrace.operator import core as _core
from gatetrace.operator import plan as _plan
from gatetrace.operator import pods as _pods
from gatetrace.policy import messages as _messages
from gatetrace.policy import secretrefs as _secretrefs

__all__ = [
    "GROUP",
    "PLURAL",
    "VERSION",
    "KubeSink",
    "configmap_payload",
    "read_admin_token",
    "resolve_secrets",
]

log = logging.getLogger("gatetrace.operator.kube")

GROUP, VERSION, PLURAL, KIND = "gatetrace.dev", "v1alpha1", "tracingpolicies", "TracingPolicy"
CONFIG_KEY = "tracing.json"
REVISION_ANNOTATION = "gatetrace.dev/revision"
COMBINED_ANNOTATION = "gatetrace.dev/combined"
MANAGED_BY = {"app.kubernetes.io/managed-by": "gatetrace-operator"}
CREDENTIALS_LABEL = "gatetrace.dev/reporter-credentials"
"""Only Secrets labelled ``gatetrace.dev/reporter-credentials: "true"`` are read for
``headersFrom`` and ``tls.secretName``: a policy author may not send any other Secret
of the namespace to an endpoint of their choice (the operator reads Secrets on their
behalf)."""


def configmap_payload(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored in the ConfigMap: headers resolved from Secrets and the PEM
    material of a ``tls`` that came from a Secret or holds a private key are left out
    (a ConfigMap is no place for credentials); the push carries them."""
    stored = copy.deepcopy(dict(config))
    for reporter in stored.get("reporters") or ():
        if not isinstance(reporter, dict):
            continue
        if reporter.get("headersFrom"):
            reporter["headers"] = {}
        tls = reporter.get("tls")
        if isinstance(tls, dict) and (tls.get("secretName") or tls.get("key")):
            for field in _secretrefs.TLS_KEYS.values():
                tls.pop(field, None)
    return stored


def owned(labels: Mapping[str, str], gateway: str) -> bool:
    """Whether a ConfigMap with these labels is the operator's own for ``gateway``."""
    wanted = {**MANAGED_BY, _pods.GATEWAY_LABEL: gateway}
    return all(labels.get(key) == value for key, value in wanted.items())


class KubeSink:
    """ConfigMaps per gateway, status subresource patches and core/v1 Events."""

    def __init__(self, api: k8s.ApiClient, *, component: str = "gatetrace-operator") -> None:
        self.core = k8s.CoreV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.component = component
        self._written: dict[_core.GatewayKey, str] = {}
        self.uids: dict[_plan.PolicyRef, str] = {}

    def forget_written(self) -> None:
        """Write every ConfigMap again on the next pass, even if unchanged here:
        repairs one deleted or edited by hand (the drift timer calls this)."""
        self._written.clear()

    async def load_revision(self, gateway: _core.GatewayKey) -> tuple[int, str] | None:
        namespace, name = gateway
        try:
            cm = await asyncio.to_thread(
                self.core.read_namespaced_config_map, _pods.configmap_name(name), namespace
            )
        except k8s_exceptions.ApiException as e:
            if e.status == 404:
                return None
            raise
        annotations = (cm.metadata.annotations if cm.metadata else None) or {}
        try:
            revision = int(annotations.get(REVISION_ANNOTATION, "0"))
        except ValueError:
            revision = 0
        return revision, str(annotations.get(COMBINED_ANNOTATION, ""))

    async def store_config(
        self,
        gateway: _core.GatewayKey,
        revision: int,
        version: str,
        config: Mapping[str, Any],
        *,
        combined: str,
        sources: Sequence[Mapping[str, str]] = (),
    ) -> None:
        namespace, name = gateway
        payload = _core.config_document(
            revision, version, configmap_payload(config), combined, sources
        )
        if self._written.get(gateway) == payload:
            return
        body: Any = {
            "metadata": {
                "name": _pods.configmap_name(name),
                "namespace": namespace,
                "labels": {**MANAGED_BY, _pods.GATEWAY_LABEL: name},
                "annotations": {
                    REVISION_ANNOTATION: str(revision),
                    COMBINED_ANNOTATION: combined,
                },
            },
            "data": {CONFIG_KEY: payload},
        }
        cm_name = _pods.configmap_name(name)
        try:
            current = await asyncio.to_thread(
                self.core.read_namespaced_config_map, cm_name, namespace
            )
        except k8s_exceptions.ApiException as e:
            if e.status != 404:
                raise
            await asyncio.to_thread(self.core.create_namespaced_config_map, namespace, body)
        else:
            meta = current.metadata
            labels = (meta.labels if meta else None) or {}
            if not owned(labels, name):
                wanted = {**MANAGED_BY, _pods.GATEWAY_LABEL: name}
                raise _core.SinkRefusedError(
                    f"ConfigMap {namespace}/{cm_name} exists and was not created by the "
                    f"gatetrace operator (labels {', '.join(f'{k}={v}' for k, v in wanted.items())}"
                    " missing): refusing to overwrite it; delete or rename it"
                )
            # the resourceVersion makes the patch conditional: a ConfigMap replaced
            # between the read and the patch gets a 409 instead of our data
            body["metadata"]["resourceVersion"] = meta.resource_version if meta else None
            await asyncio.to_thread(self.core.patch_namespaced_config_map, cm_name, namespace, body)
        self._written[gateway] = payload

    async def publish_status(self, ref: _plan.PolicyRef, status: Mapping[str, Any]) -> None:
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                {"status": dict(status)},
            )
        except k8s_exceptions.ApiException as e:
            if e.status == 404:  # deleted meanwhile
                return
            raise

    async def emit_event(self, ref: _plan.PolicyRef, type_: str, reason: str, message: str) -> None:
        now = datetime.datetime.now(tz=datetime.UTC)
        body: Any = {
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": self.uids.get(ref, ""),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": self.component},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
            "reportingComponent": self.component,
        }
        try:
            await asyncio.to_thread(self.core.create_namespaced_event, ref.namespace, body)
        except k8s_exceptions.ApiException as e:
            log.warning("event %s for %s not created: %s", reason, ref, e.reason)


async def _read_credentials(
    core: k8s.CoreV1Api, namespace: str, name: str, where: str, errors: list[tuple[str, str]]
) -> dict[str, str] | None:
    """The decoded data of a Secret that opted in as reporter credentials, or None with
    the problem appended to ``errors`` (field path ``where``; values never echoed)."""
    try:
        secret = await asyncio.to_thread(core.read_namespaced_secret, name, namespace)
    except k8s_exceptions.ApiException as e:
        errors.append((where, f"Secret {namespace}/{name}: {e.reason} ({e.status})"))
        return None
    labels = (secret.metadata.labels if secret.metadata else None) or {}
    if labels.get(CREDENTIALS_LABEL) != "true":
        errors.append(
            (
                where,
                f"Secret {namespace}/{name} has not opted in as reporter "
                f'credentials: label it {CREDENTIALS_LABEL}="true" (kubectl label secret '
                f"-n {namespace} {name} {CREDENTIALS_LABEL}=true)",
            )
        )
        return None
    decoded: dict[str, str] = {}
    failed = len(errors)
    for key, value in (secret.data or {}).items():
        try:
            decoded[key] = base64.b64decode(value).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            errors.append(
                (where, f"Secret {namespace}/{name} key {_messages.echo(key)} is not UTF-8 text")
            )
    return decoded if len(errors) == failed else None


def _secret_ref(holder: Any, key: str) -> str | None:
    """``holder[key]`` when ``holder`` is a mapping and that is a non-empty string."""
    if not isinstance(holder, dict):
        return None
    value = holder.get(key)
    return str(value) if isinstance(value, str) and value else None


async def resolve_secrets(
    api: k8s.ApiClient, obj: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """Copy of the policy with ``headersFrom`` Secrets merged into the reporters' headers
    and ``tls.secretName`` Secrets into their ``tls`` (``ca``, ``cert``, ``key``); the
    names of the Secrets read; errors (field path, message)."""
    core = k8s.CoreV1Api(api)
    body = copy.deepcopy(dict(obj))
    namespace = str((body.get("metadata") or {}).get("namespace") or "default")
    names: list[str] = []
    errors: list[tuple[str, str]] = []
    reporters = (body.get("spec") or {}).get("reporters") or []
    for index, reporter in enumerate(reporters):
        if not isinstance(reporter, dict):
            continue
        headers_secret = _secret_ref(reporter.get("headersFrom"), "secretName")
        if headers_secret is not None:
            names.append(headers_secret)
            where = f"spec.reporters[{index}].headersFrom.secretName"
            data = await _read_credentials(core, namespace, headers_secret, where, errors)
            if data is not None:
                # the policy's own headers win over the Secret's entries of the same name;
                # the model then validates every name and value (values never echoed)
                reporter["headers"] = {
                    **_secretrefs.header_entries(data),
                    **dict(reporter.get("headers") or {}),
                }
        tls = reporter.get("tls")
        tls_secret = _secret_ref(tls, "secretName")
        if tls_secret is not None and isinstance(tls, dict):
            names.append(tls_secret)
            where = f"spec.reporters[{index}].tls.secretName"
            data = await _read_credentials(core, namespace, tls_secret, where, errors)
            if data is not None:
                try:
                    reporter["tls"] = _secretrefs.tls_entries(
                        tls, data, f"{namespace}/{tls_secret}"
                    )
                except ValueError as e:
                    errors.append((where, str(e)))
    return body, names, errors


def read_admin_token(api: k8s.ApiClient, namespace: str, name: str, key: str = "token") -> str:
    """The gateways' admin bearer token from its Secret."""
    secret = k8s.CoreV1Api(api).read_namespaced_secret(name, namespace)
    raw = (secret.data or {}).get(key)
    if raw is None:
        raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(raw).decode("utf-8").strip()
