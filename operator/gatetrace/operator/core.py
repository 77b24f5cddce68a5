"""The reconcile loop shared by the kopf operator and the standalone mode.

State goes in through :meth:`Reconciler.upsert_policy`, :meth:`~Reconciler.upsert_pod`
and friends; :meth:`Reconciler.converge` computes every pod's effective
config, assigns revisions, stores each gateway's config (the ConfigMap, before
any push, so a restarting pod finds the newest), pushes what differs and
publishes per-policy status and events. Where those go is a :class:`Sink`:
the Kubernetes API or files.

Its parts: revisions per gateway (:mod:`gatetrace.operator.revisions`, they only
grow), the pod states pushes move (:mod:`~gatetrace.operator.ledger`), pods held back
while a policy is invalid (:mod:`~gatetrace.operator.holdback`), status
(:mod:`~gatetrace.operator.conditions`).
"""

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gatetrace.operator import conditions as _conditions
from gatetrace.operator import delivery as _delivery
from gatetrace.operator import holdback as _holdback
from gatetrace.operator import ledger as _ledger
from gatetrace.operator import metrics as _metrics
from gatetrace.operator import plan as _plan
from gatetrace.operator import pods as _pods
from gatetrace.operator import records_model as _records_model
from gatetrace.operator import revisions as _revisions
from gatetrace.operator import sampling_server as _sampling_server
from gatetrace.operator import shares as _shares
from gatetrace.policy import admin_protocol as _protocol
from gatetrace.policy import services as _services

__all__ = ["GatewayKey", "PodState", "PolicyRecord", "Reconciler", "Sink", "SinkRefusedError"]

log = logging.getLogger("gatetrace.operator")

GatewayKey = _records_model.GatewayKey
PolicyRecord = _records_model.PolicyRecord
PodState = _records_model.PodState
Sink = _records_model.Sink
SinkRefusedError = _records_model.SinkRefusedError
Planner = _records_model.Planner


class Reconciler:
    """Owns the desired state; one :meth:`converge` at a time."""

    def __init__(
        self,
        sink: Sink,
        pusher: _delivery.Pusher,
        planner: Planner,
        *,
        metrics: _metrics.OperatorMetrics | None = None,
        clock: Callable[[], float] = time.time,
        hold_back_invalid: bool = False,
        root_namespace: str | None = None,
    ) -> None:
        self.sink = sink
        self.pusher = pusher
        self.planner = planner
        self.metrics = metrics or _metrics.OperatorMetrics()
        self.clock = clock
        self.hold_back_invalid = hold_back_invalid
        """Do not push pods an invalid policy without a last valid generation may apply to."""
        self.policies: dict[_plan.PolicyRef, PolicyRecord] = {}
        self.policy_epoch = 0
        self.root_namespace = root_namespace
        """The cluster default's namespace, for ``spec.services`` precedence (None: the
        services' conflicts are not reported)."""
        self._service_losses: tuple[int, Mapping[str, list[tuple[str, str]]]] = (-1, {})
        """Grows with every policy change (the sampling server rebuilds its book on it)."""
        self.pods: dict[str, _pods.GatewayTarget] = {}
        self.pod_states: dict[str, PodState] = {}
        self.plans: dict[str, _plan.PodPlan] = {}
        self._revisions = _revisions.GatewayRevisions()
        self._published: dict[_plan.PolicyRef, dict[str, Any]] = {}
        self._last_status: dict[_plan.PolicyRef, Mapping[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._last_drift_check = float("-inf")
        self._inflight: dict[str, tuple[tuple[int, str], asyncio.Task[bool]]] = {}
        self._publisher: asyncio.Task[None] | None = None

    # -- inputs ------------------------------------------------------------

    def upsert_policy(self, record: PolicyRecord) -> bool:
        """Take a policy in, unless it is an older generation of the object held
        (a Secret re-read that raced an update); False when it was left out."""
        held = self.policies.get(record.ref)
        if held is not None and held.uid == record.uid and held.generation > record.generation:
            return False
        self.policies[record.ref] = record.keeping(held)
        self.policy_epoch += 1
        self._wake.set()
        return True

    def delete_policy(self, ref: _plan.PolicyRef) -> None:
        self.policies.pop(ref, None)
        self.policy_epoch += 1
        self._published.pop(ref, None)
        self._last_status.pop(ref, None)
        self._wake.set()

    def upsert_pod(self, pod: _pods.GatewayTarget) -> None:
        old = self.pods.get(pod.key)
        self.pods[pod.key] = pod
        if old is not None and (
            old.uid != pod.uid or old.ip != pod.ip or old.admin_base != pod.admin_base
        ):
            self.pod_states.pop(pod.key, None)  # a new incarnation runs nothing we pushed
        self._wake.set()

    def delete_pod(self, key: str) -> None:
        self.pods.pop(key, None)
        self.pod_states.pop(key, None)
        self.pusher.forget(key)
        self._wake.set()

    def forget_revisions(self) -> None:
        """Reload each gateway's revision from the sink (its ConfigMap) on the next pass."""
        self._revisions.forget()

    def last_status(self, ref: _plan.PolicyRef) -> Mapping[str, Any] | None:
        """The status last computed for a policy."""
        return self._last_status.get(ref)

    def request(self) -> None:
        """Ask the run loop for a converge pass soon."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------

    async def run(
        self, stop: asyncio.Event, *, drift_interval: float, retry_interval: float
    ) -> None:
        """Converge on every change, re-check drift periodically, retry failures."""
        next_drift = time.monotonic() + drift_interval
        while not stop.is_set():
            timeout = max(0.0, next_drift - time.monotonic())
            if self._has_failures():
                timeout = min(timeout, retry_interval)
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=timeout, return_when="FIRST_COMPLETED")
            for task in (waiter, stopper):
                task.cancel()
            if stop.is_set():
                await self.close()
                return
            if time.monotonic() >= next_drift:
                next_drift = time.monotonic() + drift_interval
                await self.check_drift()
            try:
                await self.converge(wait=False)  # results wake this loop when they arrive
            except Exception:  # a bug in one pass must not stop the operator
                log.exception("converge failed")
                self.metrics.reconciles.inc(("error",))

    async def close(self) -> None:
        """Cancel pushes still under way (the next operator re-plans from the cluster)."""
        tasks: list[asyncio.Task[Any]] = [task for _key, task in self._inflight.values()]
        if self._publisher is not None:
            tasks.append(self._publisher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    def _has_failures(self) -> bool:
        return any(s.state != "Applied" for k, s in self.pod_states.items() if k in self.pods)

    async def converge(self, *, wait: bool = True) -> None:
        """One reconcile pass: plan, store each gateway's config and launch the pushes
        under the lock; the pushes run in their own tasks, so a hung pod never holds
        the lock (other passes go on). With ``wait``, wait (without the lock) for the
        pushes this pass launched (not those an earlier pass still has under way),
        then publish the statuses they produced."""
        for _ in range(3):  # a 409 (pod ahead of us) needs one more pass with a higher revision
            async with self._lock:
                self._wake.clear()
                tasks = await self._converge_once()
                self.metrics.reconciles.inc(("ok",))
                self._update_pod_gauges()
            if not wait or not tasks:
                return
            await asyncio.wait(tasks)
            async with self._lock:
                await self._publish_statuses()
                self._update_pod_gauges()
            if not any(task.result() for task in tasks):
                return

    async def _converge_once(self) -> list[asyncio.Task[bool]]:
        in_force = [r for r in (p.in_force() for p in self.policies.values()) if r is not None]
        pods = sorted(self.pods.values(), key=lambda p: p.key)
        # gateway-wide traces/s budgets split among each gateway's pods (rateScope)
        self.plans = plans = _shares.share_rates(
            _holdback.hold_back(
                self.policies.values(),
                self.planner(in_force, pods),
                hold_back_invalid=self.hold_back_invalid,
            )
        )
        by_gateway: dict[GatewayKey, list[_plan.PodPlan]] = {}
        for plan in plans.values():
            if plan.error:
                _ledger.push_needed(self.pod_states, plan, 0)
                continue
            by_gateway.setdefault(plan.pod.gateway_key, []).append(plan)
        tasks: list[asyncio.Task[bool]] = []
        for gateway, gateway_plans in sorted(by_gateway.items()):
            revision = await self._revisions.take(
                gateway, gateway_plans, self.pod_states, self.sink
            )
            representative = _representative(gateway_plans)
            try:
                await self.sink.store_config(
                    gateway,
                    revision,
                    representative.version,
                    representative.config,
                    combined=self._revisions.combined(gateway),
                    sources=_protocol.source_entries(representative.sources),
                )
            except SinkRefusedError as e:
                log.warning("gateway %s/%s not pushed: %s", *gateway, e)
                for plan in gateway_plans:
                    refused = _plan.PodPlan(plan.pod, {}, "", sources=plan.sources, error=str(e))
                    self.plans[plan.pod.key] = refused
                    _ledger.push_needed(self.pod_states, refused, 0)
                continue
            for plan in gateway_plans:
                for request in _ledger.push_needed(self.pod_states, plan, revision):
                    task = self._launch(request)
                    if task is not None:
                        tasks.append(task)
        await self._publish_statuses()
        return tasks

    def _launch(self, request: _delivery.PushRequest) -> "asyncio.Task[bool] | None":
        """A new task pushing ``request``; None when one already pushes that revision
        (its caller waits for it, not this pass)."""
        running = self._inflight.get(request.target)
        same = running is not None and running[0] == (request.revision, request.version)
        if running is not None and same and not running[1].done():
            return None
        task = asyncio.create_task(self._push_one(request))
        self._inflight[request.target] = ((request.revision, request.version), task)
        return task

    async def _push_one(self, request: _delivery.PushRequest) -> bool:
        """Push, record the result; True when the pod runs a newer revision (re-plan)."""
        result = await self.pusher.push(request)
        async with self._lock:
            again = _ledger.record_results(self.pod_states, [result], self.metrics)
            running = self._inflight.get(request.target)
            if running is not None and running[1] is asyncio.current_task():
                del self._inflight[request.target]
            self._update_pod_gauges()
        self._publish_soon()
        if again:
            self._wake.set()
        return again

    def _publish_soon(self) -> None:
        """Publish statuses once for results that arrive together (not once per pod)."""
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_later())

    async def _publish_later(self) -> None:
        await asyncio.sleep(0.05)
        async with self._lock:
            await self._publish_statuses()

    async def check_drift_if_due(self, interval: float) -> bool:
        """:meth:`check_drift` unless one ran less than ``interval`` seconds ago."""
        now = time.monotonic()
        if now - self._last_drift_check < interval * 0.9:
            return False
        self._last_drift_check = now
        await self.check_drift()
        return True

    async def check_drift(self) -> None:
        """Ask every applied pod what it runs; a difference makes it pending again.

        It runs outside the converge lock (kopf's timer), so an answer is kept
        only if the pod's state did not change while it was asked: one read
        before a concurrent push landed is no drift."""
        checks = [
            (key, pod, state)
            for key, state in self.pod_states.items()
            if (pod := self.pods.get(key)) is not None and pod.deliverable and pod.admin_url
        ]

        async def one(key: str, pod: _pods.GatewayTarget, state: PodState) -> None:
            assert pod.admin_url is not None
            asked = (state.revision, state.version, state.state)
            running = await self.pusher.client.get_running(pod.admin_url, self.pusher.retry.timeout)
            if self.pod_states.get(key) is not state or asked != (
                state.revision,
                state.version,
                state.state,
            ):
                return  # a converge pass moved the pod meanwhile; the next check asks again
            if running is None:
                if state.state == "Applied":
                    state.state, state.message = "Pending", "admin API unreachable on drift check"
                return
            if running.revision != state.revision or running.version != state.version:
                self.metrics.drift.inc()
                state.running_revision, state.running_version = running.revision, running.version
                state.state = "Pending"
                state.message = (
                    f"drift: runs revision {running.revision}, expected {state.revision}"
                )
                self._wake.set()

        await asyncio.gather(*(one(*c) for c in checks))

    # -- status ------------------------------------------------------------

    async def _publish_statuses(self) -> None:
        now = self.clock()
        self.metrics.stale_policies.set(
            sum(
                r.stale or r.remembered_valid_generation is not None for r in self.policies.values()
            )
        )
        for ref, record in sorted(self.policies.items()):
            if self.policies.get(ref) is not record:
                continue  # deleted or replaced while an earlier status was written
            previous_status = self._last_status.get(ref, record.status)
            status, events = _conditions.policy_status(
                record,
                self.plans,
                self.pod_states,
                previous=previous_status,
                now=now,
                service_losses=self.service_losses().get(ref.key, ()),
            )
            comparable = _conditions.without_times(status)
            if self._published.get(ref) == comparable:
                continue
            previous = self._published.get(ref)
            self._published[ref] = comparable
            self._last_status[ref] = status
            if previous is None and _conditions.without_times(dict(record.status)) == comparable:
                continue  # the object already says this (operator restart)
            try:
                await self.sink.publish_status(ref, status)
            except Exception as e:  # the next pass retries
                log.warning("status of %s not written: %s", ref, e)
                self._published.pop(ref, None)
                continue
            for type_, reason, message in events:
                try:
                    await self.sink.emit_event(ref, type_, reason, message)
                except Exception as e:
                    log.warning("event for %s not written: %s", ref, e)

    def service_losses(self) -> Mapping[str, list[tuple[str, str]]]:
        """policy key -> [(service, winning policy)] of ``spec.services`` conflicts."""
        if self.root_namespace is None:
            return {}
        epoch, losses = self._service_losses
        if epoch != self.policy_epoch:
            sources = _sampling_server.sources_of(self.policies, self.root_namespace)
            losses = _services.StrategyBook.build(sources).losses
            self._service_losses = (self.policy_epoch, losses)
        return losses

    def _update_pod_gauges(self) -> None:
        counts = Counter(s.state for k, s in self.pod_states.items() if k in self.pods)
        for state in ("Applied", "Pending", "Failed"):
            self.metrics.pods.set(counts.get(state, 0), (state,))


def _representative(plans: Sequence[_plan.PodPlan]) -> _plan.PodPlan:
    """The config most of the gateway's pods get (ties: the first pod by name)."""
    versions = Counter(p.version for p in plans)
    best = max(versions.values())
    return min((p for p in plans if versions[p.version] == best), key=lambda p: p.pod.key)


def config_document(
    revision: int,
    version: str,
    config: Mapping[str, Any],
    combined: str = "",
    sources: Sequence[Mapping[str, str]] = (),
) -> str:
    """The ConfigMap payload the gateway's tracing file watcher reads; ``sources`` as in a
    push (:func:`gatetrace.policy.admin_protocol.source_entries`)."""
    document = {"revision": revision, "version": version, "config": config, "combined": combined}
    document["sources"] = [dict(source) for source in sources]
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
