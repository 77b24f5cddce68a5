"""Precedence and incremental recomputation of effective configs (DESIGN.md, "Precedence").

For a gateway pod in namespace P, with the operator's root namespace R:

1. built-in defaults;
2. cluster default: the policy without selector in R;
3. namespace default: the policy without selector in P (when P is not R);
4. workload: a policy with a selector in P matching the pod's labels.

Each level contributes one policy, the oldest (creationTimestamp, then name);
the others at that level are reported as conflicts.  Layers deep-merge in
that order (:mod:`gatetrace.policy.merge`).  Then, for every other namespace N
whose default sets sampling, ``namespaceOverrides[N]`` carries that sampling,
clamped to the gateway's ``sampling.namespaceOverrides`` limits or ignored
when they do not allow overrides.

:class:`PolicyIndex` keeps policies and pods indexed by namespace and caches
the merge per combination of winning policies, so that most pods share work
and a change to one policy only recomputes the pods it can affect.
"""

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pydantic

from gatetrace.policy import clamp, errors, merge, model, overrides, sampling
from gatetrace.policy import effective as eff

_SELECTOR_FIELD = frozenset({"selector", "services"})
"""Spec fields that are not gateway settings (not merged into any gateway's config)."""
LIMIT_SOURCE = overrides.LIMIT_SOURCE
_LimitsKey = tuple[bool, float, float | None]
_MAX_LIMIT_SETS = 256
"""Distinct ``namespaceOverrides`` limits whose override parts are cached (edits add more)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    source: eff.PolicySource
    stamp: int
    layer: merge.Layer
    override: merge.Layer | None

    @property
    def selector(self) -> model.LabelSelector | None:
        return self.source.spec.selector

    def ref(self, level: eff.Level) -> eff.SourceRef:
        s = self.source
        return eff.SourceRef(s.namespace, s.name, s.generation, level)


@dataclasses.dataclass(frozen=True, slots=True)
class _Base:
    config: model.TracingConfig
    digest: str
    provenance: Mapping[str, str]
    sources: tuple[eff.SourceRef, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class _Part:
    part: overrides.OverridePart
    source: eff.SourceRef
    conflicts: tuple[eff.Conflict, ...]

    @property
    def override(self) -> model.NamespaceOverride | None:
        return self.part.override


def _conflicts(entries: list[_Entry], level: eff.Level, namespace: str) -> tuple[eff.Conflict, ...]:
    winner = entries[0].source.key
    return tuple(eff.Conflict(level, namespace, winner, e.source.key) for e in entries[1:])


class PolicyIndex:
    """Policies and gateway pods, with cached effective configs updated incrementally.

    ``upsert_policy``/``delete_policy``/``upsert_pod``/``delete_pod`` return the
    keys of the pods whose effective config may have changed; ``effective``
    computes (or returns the cached) config of one pod.
    """

    def __init__(self, root_namespace: str) -> None:
        self.root_namespace = root_namespace
        self._stamp = 0
        self._policies: dict[str, _Entry] = {}
        self._defaults: dict[str, list[_Entry]] = {}
        self._workloads: dict[str, list[_Entry]] = {}
        self._pods: dict[eff.PodKey, eff.GatewayPod] = {}
        self._pods_by_ns: dict[str, set[eff.PodKey]] = {}
        self._results: dict[eff.PodKey, eff.EffectiveConfig | errors.MergeFailed] = {}
        self._bases: dict[tuple[int, int, int], _Base | errors.MergeFailed] = {}
        self._parts: dict[_LimitsKey, dict[str, _Part]] = {}
        self._finals: dict[tuple[Any, ...], eff.EffectiveConfig] = {}
        # Workload policies matching each pod; dropped when the pod or a
        # selector policy of its namespace changes.
        self._matching: dict[eff.PodKey, list[_Entry]] = {}

    # -- policies ---------------------------------------------------------

    def upsert_policy(self, source: eff.PolicySource) -> frozenset[eff.PodKey]:
        """Add or replace a policy; returns the pods to recompute."""
        old = self._policies.get(source.key)
        if old is not None:
            self._remove(old)
        self._stamp += 1
        spec = source.spec
        is_default = spec.selector is None
        override = None
        if is_default and "sampling" in spec.model_fields_set:
            override = clamp.override_layer(spec.sampling) or None
        entry = _Entry(source, self._stamp, merge.layer_of(spec, exclude=_SELECTOR_FIELD), override)
        self._policies[source.key] = entry
        bucket = self._defaults if is_default else self._workloads
        entries = bucket.setdefault(source.namespace, [])
        entries.append(entry)
        entries.sort(key=lambda e: e.source.age_key)
        return self._touched(old, entry)

    def delete_policy(self, namespace: str, name: str) -> frozenset[eff.PodKey]:
        """Forget a policy (pods revert to the remaining ones); returns the pods to recompute."""
        old = self._policies.get(f"{namespace}/{name}")
        if old is None:
            return frozenset()
        self._remove(old)
        return self._touched(old, None)

    def _remove(self, entry: _Entry) -> None:
        del self._policies[entry.source.key]
        bucket = self._defaults if entry.selector is None else self._workloads
        entries = bucket[entry.source.namespace]
        entries.remove(entry)
        if not entries:
            del bucket[entry.source.namespace]
        stale = [k for k in self._bases if entry.stamp in k]
        for key in stale:
            del self._bases[key]

    def _affected(self, entry: _Entry) -> set[eff.PodKey]:
        ns = entry.source.namespace
        if entry.selector is None:
            if ns == self.root_namespace or entry.override is not None:
                return set(self._pods)
            return set(self._pods_by_ns.get(ns, ()))
        selector = entry.selector
        return {k for k in self._pods_by_ns.get(ns, ()) if selector.matches(self._pods[k].labels)}

    def _touched(self, old: _Entry | None, new: _Entry | None) -> frozenset[eff.PodKey]:
        affected: set[eff.PodKey] = set()
        self._finals.clear()
        for entry in (old, new):
            if entry is None:
                continue
            affected |= self._affected(entry)
            if entry.selector is not None:
                for key in self._pods_by_ns.get(entry.source.namespace, ()):
                    self._matching.pop(key, None)
            if entry.selector is None and entry.source.namespace != self.root_namespace:
                # Which policy of that namespace overrides others' sampling may change.
                self._parts.clear()
                affected |= set(self._pods) if self._defaults_with_override() else set()
        for key in affected:
            self._results.pop(key, None)
        return frozenset(affected)

    def _defaults_with_override(self) -> bool:
        return any(e.override is not None for es in self._defaults.values() for e in es)

    # -- pods -------------------------------------------------------------

    def upsert_pod(self, pod: eff.GatewayPod) -> frozenset[eff.PodKey]:
        """Add or relabel a gateway pod; returns its key (to recompute)."""
        self._pods[pod.key] = dataclasses.replace(pod, labels=dict(pod.labels))
        self._pods_by_ns.setdefault(pod.namespace, set()).add(pod.key)
        self._results.pop(pod.key, None)
        self._matching.pop(pod.key, None)
        return frozenset({pod.key})

    def delete_pod(self, namespace: str, name: str) -> frozenset[eff.PodKey]:
        """Forget a gateway pod."""
        key = (namespace, name)
        if self._pods.pop(key, None) is None:
            return frozenset()
        self._pods_by_ns[namespace].discard(key)
        self._results.pop(key, None)
        self._matching.pop(key, None)
        return frozenset({key})

    def pods(self) -> Iterator[eff.GatewayPod]:
        """Known gateway pods."""
        return iter(list(self._pods.values()))

    def policies(self) -> Iterator[eff.PolicySource]:
        """Known policies."""
        return iter([e.source for e in self._policies.values()])

    # -- results ----------------------------------------------------------

    def effective(self, namespace: str, name: str) -> eff.EffectiveConfig:
        """The effective config of a known pod.

        Raises ``KeyError`` for an unknown pod and :class:`errors.MergeFailed`
        when the winning policies are valid alone but not together.
        """
        key = (namespace, name)
        result = self._results.get(key)
        if result is None:
            try:
                result = self._compute(self._pods[key])
            except errors.MergeFailed as e:
                result = e
            self._results[key] = result
        if isinstance(result, errors.MergeFailed):
            raise result
        return result

    def effective_all(
        self,
    ) -> dict[eff.PodKey, eff.EffectiveConfig | errors.MergeFailed]:
        """Every pod's effective config (or why it could not be merged)."""
        out: dict[eff.PodKey, eff.EffectiveConfig | errors.MergeFailed] = {}
        for key in self._pods:
            try:
                out[key] = self.effective(*key)
            except errors.MergeFailed as e:
                out[key] = e
        return out

    def targets(self, namespace: str, name: str) -> frozenset[eff.PodKey]:
        """Pods whose effective config uses the policy (as a winner at some level)."""
        wanted = f"{namespace}/{name}"
        found: set[eff.PodKey] = set()
        for key, result in self.effective_all().items():
            if isinstance(result, eff.EffectiveConfig) and any(
                s.key == wanted for s in result.sources
            ):
                found.add(key)
        return frozenset(found)

    # -- computation ------------------------------------------------------

    def _winners(
        self, pod: eff.GatewayPod
    ) -> tuple[list[tuple[eff.Level, str, list[_Entry]]], tuple[int, int, int]]:
        levels: list[tuple[eff.Level, str, list[_Entry]]] = []
        root = self.root_namespace
        if root in self._defaults:
            levels.append(("cluster", root, self._defaults[root]))
        if pod.namespace != root and pod.namespace in self._defaults:
            levels.append(("namespace", pod.namespace, self._defaults[pod.namespace]))
        matching = self._matching.get(pod.key)
        if matching is None:
            matching = [
                e
                for e in self._workloads.get(pod.namespace, ())
                if e.selector is not None and e.selector.matches(pod.labels)
            ]
            self._matching[pod.key] = matching
        if matching:
            levels.append(("workload", pod.namespace, matching))
        stamps = {level: entries[0].stamp for level, _, entries in levels}
        key = (stamps.get("cluster", 0), stamps.get("namespace", 0), stamps.get("workload", 0))
        return levels, key

    def _base(
        self, levels: list[tuple[eff.Level, str, list[_Entry]]], key: tuple[int, int, int]
    ) -> _Base:
        cached = self._bases.get(key)
        if isinstance(cached, errors.MergeFailed):
            raise cached
        if cached is not None:
            return cached
        merged: merge.Layer = {}
        prov: merge.ProvTree = {}
        sources = []
        for level, _, entries in levels:
            winner = entries[0]
            merged, prov = merge.merge(
                model.TracingConfig, merged, prov, winner.layer, winner.source.key
            )
            sources.append(winner.ref(level))
        try:
            config = model.TracingConfig.model_validate(merged)
        except pydantic.ValidationError as e:
            keys = [s.key for s in sources]
            described: errors.ValidationFailed = errors.from_pydantic(
                e, subject="merged policies " + ", ".join(keys)
            )
            failed = errors.MergeFailed(described.errors, subject=described.subject, policies=keys)
            self._bases[key] = failed
            raise failed from e

        def provenance() -> dict[str, str]:
            wire = eff.wire_config(config)
            del wire["namespaceOverrides"]
            return merge.flatten_provenance(model.TracingConfig, wire, prov)

        base = _Base(
            config=config,
            digest=eff.settings_digest(config),
            provenance=eff.LazyProvenance(provenance),
            sources=tuple(sources),
        )
        self._bases[key] = base
        return base

    def _overrides(self, limits: sampling.NamespaceOverrideLimits) -> dict[str, _Part]:
        key: _LimitsKey = (limits.allowed, limits.max_rate, limits.max_traces_per_second)
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) >= _MAX_LIMIT_SETS:
                self._parts.clear()  # limits edited many times: drop the sets no pod may use
            parts = {}
            for ns, entries in self._defaults.items():
                if ns != self.root_namespace and entries[0].override is not None:
                    parts[ns] = self._part(ns, entries, limits)
            self._parts[key] = parts
        return parts

    def _part(
        self, ns: str, entries: list[_Entry], limits: sampling.NamespaceOverrideLimits
    ) -> _Part:
        winner = entries[0]
        assert winner.override is not None
        part = overrides.build_part(ns, winner.source.key, winner.override, limits)
        return _Part(part, winner.ref("override"), _conflicts(entries, "override", ns))

    def _compute(self, pod: eff.GatewayPod) -> eff.EffectiveConfig:
        levels, base_key = self._winners(pod)
        base = self._base(levels, base_key)
        limits = base.config.sampling.namespace_overrides
        final_key = (
            tuple(tuple(e.stamp for e in entries) for _, _, entries in levels),
            pod.namespace,
            (limits.allowed, limits.max_rate, limits.max_traces_per_second),
        )
        cached = self._finals.get(final_key)
        if cached is not None:
            return cached
        parts = {ns: p for ns, p in self._overrides(limits).items() if ns != pod.namespace}
        applied = {ns: p.override for ns, p in parts.items() if p.override is not None}
        config = base.config.model_copy(update={"namespace_overrides": applied})
        version = eff.combine_version(
            base.digest, ((ns, p.part.digest) for ns, p in parts.items() if p.override is not None)
        )

        def provenance() -> dict[str, str]:
            flat = dict(base.provenance)
            for part in parts.values():
                flat.update(part.part.provenance)
            return flat

        conflicts: list[eff.Conflict] = []
        for level, ns, entries in levels:
            conflicts.extend(_conflicts(entries, level, ns))
        for part in parts.values():
            conflicts.extend(part.conflicts)
        result = eff.EffectiveConfig(
            config=config,
            version=version,
            sources=base.sources + tuple(p.source for p in parts.values() if p.override),
            provenance=eff.LazyProvenance(provenance),
            conflicts=tuple(conflicts),
            clamps=tuple(c for p in parts.values() for c in p.part.clamps),
        )
        self._finals[final_key] = result
        return result


def compute_effective(
    policies: Iterable[eff.PolicySource],
    *,
    root_namespace: str,
    pod: eff.GatewayPod,
) -> eff.EffectiveConfig:
    """The effective config of one pod from a set of policies (a pure function)."""
    index = PolicyIndex(root_namespace)
    for policy in policies:
        index.upsert_policy(policy)
    index.upsert_pod(pod)
    return index.effective(pod.namespace, pod.name)


def compute_all(
    policies: Iterable[eff.PolicySource],
    *,
    root_namespace: str,
    pods: Iterable[eff.GatewayPod],
) -> dict[eff.PodKey, eff.EffectiveConfig | errors.MergeFailed]:
    """Effective configs of many pods at once (a pure function)."""
    index = PolicyIndex(root_namespace)
    for policy in policies:
        index.upsert_policy(policy)
    for pod in pods:
        index.upsert_pod(pod)
    return index.effective_all()
