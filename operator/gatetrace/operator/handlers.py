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
import time
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
            self.sink,
            pusher,
            _planner.IndexPlanner(settings.root_namespace),
            root_namespace=settings.root_namespace,
        )
        self.secret_users: dict[tuple[str, str], set[_plan.PolicyRef]] = {}
        self.synced_at = float("-inf")
        """When :meth:`prefill` last listed the cluster (monotonic seconds)."""
        self._sync_lock = asyncio.Lock()
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

    def failing(self, ref: _plan.PolicyRef) -> tuple[list[str], bool]:
        """The pods of ``ref`` that failed, and whether retrying may help: a push may go
        through later, a merge of policies that do not fit together never will (only an
        edit of one of them, which runs its own handler, can fix it)."""
        failing = []
        retryable = False
        for key, plan in self.reconciler.plans.items():
            state = self.reconciler.pod_states.get(key)
            if ref in plan.sources and state is not None and state.state == "Failed":
                failing.append(f"{key}: {state.message}")
                retryable = retryable or not plan.error
        return failing, retryable

    async def prefill(self, *, prune: bool = False) -> None:
        """List policies and gateway pods and take in those not known yet (before
        the first converge). With ``prune``, also drop known ones the listing no
        longer has: deletions missed while kopf peering paused this replica (a
        paused replica neither watches nor lists; resuming reports only what exists)."""
        policies_before = dict(self.reconciler.policies)
        pods_before = dict(self.reconciler.pods)
        items, pod_objects = await self._list()
        listed_refs: set[_plan.PolicyRef] = set()
        for item in items:
            meta = item.get("metadata") or {}
            ref = _plan.PolicyRef(str(meta.get("namespace")), str(meta.get("name")))
            listed_refs.add(ref)
            if not meta.get("deletionTimestamp") and ref not in self.reconciler.policies:
                await self.ingest_policy(item)
        listed_pods: set[str] = set()
        for obj in pod_objects:
            pod = _pods.pod_from_object(obj)
            if pod is not None:
                listed_pods.add(pod.key)
                if pod.key not in self.reconciler.pods:
                    self.reconciler.upsert_pod(pod)
        if prune:
            # only what is unchanged since before the listing: anything an event
            # brought in meanwhile is newer than the listing
            for ref, record in policies_before.items():
                if ref not in listed_refs and self.reconciler.policies.get(ref) is record:
                    log.info("policy %s is gone (missed while paused)", ref)
                    self.forget_policy(ref)
            for key, known in pods_before.items():
                if key not in listed_pods and self.reconciler.pods.get(key) is known:
                    self.reconciler.delete_pod(key)
        self.synced_at = time.monotonic()

    async def resync_if_stale(self) -> None:
        """:meth:`prefill` with pruning, unless one ran within the drift interval
        (the drift timer runs it on the acting replica; a replica taking over has
        not run it since it was paused)."""
        if time.monotonic() - self.synced_at <= self.settings.drift_interval:
            return
        async with self._sync_lock:
            if time.monotonic() - self.synced_at > self.settings.drift_interval:
                # another replica may have moved every gateway on meanwhile: take the
                # revisions from the ConfigMaps again rather than from our memory
                self.reconciler.forget_revisions()
                self.sink.forget_written()
                await self.prefill(prune=True)

    async def _list(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        custom = k8s.CustomObjectsApi(self.api)
        core = k8s.CoreV1Api(self.api)
        items: list[dict[str, Any]] = []
        pod_objects: list[dict[str, Any]] = []
        for namespace in self.settings.watched_namespaces or (None,):
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
            items.extend(listing.get("items", []))
            pod_objects.extend(
                self.api.sanitize_for_serialization(p)  # type: ignore[no-untyped-call]
                for p in pods.items
            )
        return items, pod_objects


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
    async def policy_changed(body: kopf.Body, **_: Any) -> None:
        await state.resync_if_stale()
        ref = await state.ingest_policy(dict(body))
        await state.reconciler.converge()
        failing, retryable = state.failing(ref)
        if failing:
            message = "not applied on: " + "; ".join(failing[:5])
            if not retryable:
                raise kopf.PermanentError(message)
            raise kopf.TemporaryError(message, delay=settings.retry_interval)

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
        await state.resync_if_stale()
        if state.observe_pod(event):
            # pushes run in the background: one slow pod never holds up pod events
            await state.reconciler.converge(wait=False)

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
            await state.prefill(prune=True)
            state.sink.forget_written()
            await state.refresh_secrets()
            await state.reconciler.converge(wait=False)

    @kopf.on.probe(id="policies", registry=registry)
    def policies_probe(**_: Any) -> int:
        return len(state.reconciler.policies)

    @kopf.on.probe(id="pods", registry=registry)
    def pods_probe(**_: Any) -> int:
        return len(state.reconciler.pods)

    return registry
