"""The kopf handlers: TracingPolicies, gateway pods and referenced Secrets feed
the :class:`~gatetrace.operator.core.Reconciler`.

Handlers are registered on a registry of their own (:func:`build_registry`),
so the operator can be started (and tested) without import-time globals. At
start-up the current policies and pods are listed once before the first
converge, so a restarted operator never pushes a config computed from half
the cluster. Failed pods make the policy handler raise ``TemporaryError``
so kopf retries it with its backoff; the drift timer re-checks every pod and
re-reads the Secrets that policies reference (the operator has ``get`` on
Secrets, never ``list``/``watch``).
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import client as k8s

from gatetrace.operator import core as _core
from gatetrace.operator import delivery as _delivery
from gatetrace.operator import kube as _kube
from gatetrace.operator import plan as _plan
from gatetrace.operator import planner as _planner
from gatetrace.operator import pods as _pods
from gatetrace.operator import records as _records
from gatetrace.operator import settings as _settings

__all__ = ["FINALIZER", "OperatorState", "build_registry"]

log = logging.getLogger("gatetrace.operator")

FINALIZER = "gatetrace.dev/finalizer"


class OperatorState:
    """What the handlers share: the API client, the reconciler, secret usage."""

    def __init__(self, settings: _settings.OperatorSettings, api: k8s.ApiClient) -> None:
        self.settings = settings
        self.api = api
        self.sink = _kube.KubeSink(api)
        namespace, _, name = settings.admin_token_secret.partition("/")
        self._token_ref = (namespace, name)
        self._token = ""
        client = _delivery.AdminClient(self.token)
        pusher = _delivery.Pusher(
            client,
            concurrency=settings.push_concurrency,
            retry=_delivery.RetryPolicy(
                attempts=settings.push_attempts, timeout=settings.push_timeout
            ),
        )
        self.reconciler = _core.Reconciler(
            self.sink, pusher, _planner.IndexPlanner(settings.root_namespace)
        )
        self.secret_users: dict[tuple[str, str], set[_plan.PolicyRef]] = {}
        self.bodies: dict[_plan.PolicyRef, dict[str, Any]] = {}

    def token(self) -> str:
        return self._token

    def refresh_token(self) -> None:
        try:
            self._token = _kube.read_admin_token(
                self.api, *self._token_ref, key=self.settings.admin_token_key
            )
        except Exception as e:  # pushes then fail with Unauthorized, which status shows
            log.error("admin token Secret %s unreadable: %s", "/".join(self._token_ref), e)

    async def ingest_policy(
        self, body: dict[str, Any], *, refresh: bool = False
    ) -> _plan.PolicyRef:
        """Resolve a policy's Secrets and hand it to the reconciler. A ``refresh``
        (of a body held here) is dropped if the policy was updated or deleted
        while its Secrets were read."""
        resolved, secrets, errors = await _kube.resolve_secrets(self.api, body)
        record = _records.record_from_object(resolved)
        if refresh and self.bodies.get(record.ref) is not body:
            return record.ref
        if errors:
            record = _core.PolicyRecord(
                record.ref,
                record.generation,
                record.created,
                record.body,
                record.errors + tuple(errors),
                record.status,
            )
        if not self.reconciler.upsert_policy(record):
            return record.ref  # an update got in while the Secrets were read
        for users in self.secret_users.values():
            users.discard(record.ref)
        for secret in secrets:
            self.secret_users.setdefault((record.ref.namespace, secret), set()).add(record.ref)
        self.sink.uids[record.ref] = record.uid
        self.bodies[record.ref] = dict(body)
        return record.ref

    async def refresh_secrets(self) -> None:
        """Re-read the admin token and the Secrets policies use (no watch on Secrets:
        the operator only needs ``get`` on them, and picks changes up here)."""
        await asyncio.to_thread(self.refresh_token)
        users = {ref for refs in self.secret_users.values() for ref in refs}
        for ref in sorted(users):
            body = self.bodies.get(ref)
            if body is not None:
                await self.ingest_policy(body, refresh=True)

    def observe_pod(self, event: Mapping[str, Any]) -> bool:
        """Feed one pod watch event; True when the gateway pods changed. A pod that
        is deleted or no longer labelled as a gateway pod is dropped."""
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        pod = None if event.get("type") == "DELETED" else _pods.pod_from_object(obj)
        if pod is None:
            if key not in self.reconciler.pods:
                return False
            self.reconciler.delete_pod(key)
            return True
        if self.reconciler.pods.get(key) == pod:
            return False
        self.reconciler.upsert_pod(pod)
        return True

    def forget_policy(self, ref: _plan.PolicyRef) -> None:
        """A deleted policy: out of the reconciler and of the Secret bookkeeping."""
        self.reconciler.delete_policy(ref)
        self.bodies.pop(ref, None)
        self.sink.uids.pop(ref, None)
        for users in self.secret_users.values():
            users.discard(ref)

    def failing(self, ref: _plan.PolicyRef) -> list[str]:
        failing = []
        for key, plan in self.reconciler.plans.items():
            state = self.reconciler.pod_states.get(key)
            if ref in plan.sources and state is not None and state.state == "Failed":
                failing.append(f"{key}: {state.message}")
        return failing

    async def prefill(self) -> None:
        """List policies and gateway pods once, before the first converge."""
        custom = k8s.CustomObjectsApi(self.api)
        core = k8s.CoreV1Api(self.api)
        namespaces = self.settings.watched_namespaces or (None,)
        for namespace in namespaces:
            listing: Any
            if namespace is None:
                listing = await asyncio.to_thread(
                    custom.list_cluster_custom_object, _kube.GROUP, _kube.VERSION, _kube.PLURAL
                )
                pods = await asyncio.to_thread(
                    core.list_pod_for_all_namespaces, label_selector=_pods.GATEWAY_LABEL
                )
            else:
                listing = await asyncio.to_thread(
                    custom.list_namespaced_custom_object,
                    _kube.GROUP,
                    _kube.VERSION,
                    namespace,
                    _kube.PLURAL,
                )
                pods = await asyncio.to_thread(
                    core.list_namespaced_pod, namespace, label_selector=_pods.GATEWAY_LABEL
                )
            for item in listing.get("items", []):
                if not (item.get("metadata") or {}).get("deletionTimestamp"):
                    await self.ingest_policy(item)
            for pod_obj in pods.items:
                pod = _pods.pod_from_object(self.api.sanitize_for_serialization(pod_obj))  # type: ignore[no-untyped-call]
                if pod is not None:
                    self.reconciler.upsert_pod(pod)


def build_registry(state: OperatorState) -> kopf.OperatorRegistry:
    """Every handler of the operator, bound to ``state``."""
    registry = kopf.OperatorRegistry()
    settings = state.settings
    policy_resource = (_kube.GROUP, _kube.VERSION, _kube.PLURAL)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="gatetrace.dev"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="gatetrace.dev", key="last-handled-configuration"
        )
        settings.posting.enabled = False  # we write our own, meaningful Events
        settings.watching.server_timeout = 300
        await asyncio.to_thread(state.refresh_token)
        await state.prefill()

    @kopf.on.resume(*policy_resource, registry=registry)
    @kopf.on.create(*policy_resource, registry=registry)
    @kopf.on.update(*policy_resource, registry=registry)
    async def policy_changed(body: kopf.Body, **_: Any) -> str:
        ref = await state.ingest_policy(dict(body))
        await state.reconciler.converge()
        failing = state.failing(ref)
        if failing:
            raise kopf.TemporaryError(
                "not applied on: " + "; ".join(failing[:5]), delay=settings.retry_interval
            )
        return "applied"

    @kopf.on.delete(*policy_resource, registry=registry)
    async def policy_deleted(body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata") or {}
        ref = _plan.PolicyRef(str(meta.get("namespace")), str(meta.get("name")))
        state.forget_policy(ref)
        # pods move to the remaining policies (ConfigMaps first, then pushes)
        # before the finalizer goes; unreachable pods catch up from the ConfigMap.
        await state.reconciler.converge()

    # No label filter here: kopf filters on the client side, so a pod that loses its
    # gateway label would never be seen again and stay a target forever.
    @kopf.on.event("", "v1", "pods", registry=registry)
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        if state.observe_pod(event):
            await state.reconciler.converge()

    # A timer on pods would make kopf put a finalizer on every gateway pod; the
    # policies carry ours anyway, and the check below runs at most once per interval.
    @kopf.timer(
        *policy_resource,
        interval=settings.drift_interval,
        initial_delay=settings.drift_interval,
        registry=registry,
    )
    async def drift(**_: Any) -> None:
        if await state.reconciler.check_drift_if_due(settings.drift_interval):
            await state.refresh_secrets()
            await state.reconciler.converge()

    @kopf.on.probe(id="policies", registry=registry)
    def policies_probe(**_: Any) -> int:
        return len(state.reconciler.policies)

    @kopf.on.probe(id="pods", registry=registry)
    def pods_probe(**_: Any) -> int:
        return len(state.reconciler.pods)

    return registry
