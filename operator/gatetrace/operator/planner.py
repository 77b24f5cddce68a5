"""Plans from :class:`gatetrace.policy.index.PolicyIndex`, kept up to date
incrementally: each call hands the index only what changed since the last
one, so a change recomputes only the pods it touches."""

from collections.abc import Sequence
from typing import Any

from gatetrace.operator import core as _core
from gatetrace.operator import plan as _plan
from gatetrace.operator import pods as _pods
from gatetrace.policy import effective as _eff
from gatetrace.policy import errors as _errors
from gatetrace.policy import index as _index
from gatetrace.policy import model as _model

__all__ = ["IndexPlanner"]


def _ref(key: str) -> _plan.PolicyRef:
    namespace, _, name = key.partition("/")
    return _plan.PolicyRef(namespace, name)


class IndexPlanner:
    """A :data:`~gatetrace.operator.core.Planner` over a :class:`PolicyIndex`."""

    def __init__(self, root_namespace: str) -> None:
        self.index = _index.PolicyIndex(root_namespace)
        self._policies: dict[_plan.PolicyRef, tuple[int, Any]] = {}
        self._pods: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {}
        self._plans: dict[str, _plan.PodPlan] = {}

    def __call__(
        self, policies: Sequence[_core.PolicyRecord], pods: Sequence[_pods.GatewayTarget]
    ) -> dict[str, _plan.PodPlan]:
        dirty: set[tuple[str, str]] = set()
        wanted = {p.ref: p for p in policies}
        for ref in list(self._policies):
            if ref not in wanted:
                dirty |= self.index.delete_policy(ref.namespace, ref.name)
                del self._policies[ref]
        for ref, record in wanted.items():
            stamp = (record.generation, record.body)
            if self._policies.get(ref) == stamp:
                continue
            policy = _model.TracingPolicy.model_validate(dict(record.body))
            dirty |= self.index.upsert_policy(_eff.PolicySource.from_policy(policy))
            self._policies[ref] = stamp
        current = {p.key: p for p in pods}
        for key in list(self._pods):
            if key not in current:
                namespace, name, _ = self._pods.pop(key)
                dirty |= self.index.delete_pod(namespace, name)
                self._plans.pop(key, None)
        for key, pod in current.items():
            ident = (pod.namespace, pod.name, tuple(sorted(pod.labels.items())))
            if self._pods.get(key) != ident:
                self._pods[key] = ident
                dirty |= self.index.upsert_pod(_eff.GatewayPod(pod.namespace, pod.name, pod.labels))
                dirty.add((pod.namespace, pod.name))
        plans: dict[str, _plan.PodPlan] = {}
        for key, pod in current.items():
            previous = self._plans.get(key)
            if previous is not None and (pod.namespace, pod.name) not in dirty:
                plans[key] = previous if previous.pod == pod else _with_pod(previous, pod)
                continue
            plans[key] = self._plan(pod)
        self._plans = plans
        return plans

    def _plan(self, pod: _pods.GatewayTarget) -> _plan.PodPlan:
        try:
            result = self.index.effective(pod.namespace, pod.name)
        except _errors.MergeFailed as e:
            # the policies that failed to merge answer for the pod (their Degraded names it)
            sources = tuple(_ref(key) for key in e.policies)
            return _plan.PodPlan(
                pod, {}, "", sources=sources, error=f"the merged config is invalid: {e}"
            )
        return _plan.PodPlan(
            pod=pod,
            config=_eff.wire_config(result.config),
            version=result.version,
            sources=tuple(_plan.PolicyRef(s.namespace, s.name) for s in result.sources),
            conflicts=tuple((_ref(c.loser), _ref(c.winner)) for c in result.conflicts),
            clamps=tuple(
                _plan.PodClamp(_ref(c.policy), c.path, c.action, c.requested, c.applied)
                for c in result.clamps
            ),
            provenance=dict(result.provenance),
        )


def _with_pod(plan: _plan.PodPlan, pod: _pods.GatewayTarget) -> _plan.PodPlan:
    return _plan.PodPlan(
        pod,
        plan.config,
        plan.version,
        plan.sources,
        plan.conflicts,
        plan.clamps,
        plan.provenance,
        plan.error,
    )
