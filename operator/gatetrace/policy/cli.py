"""The logic of ``gatetrace policy validate|explain`` and ``gatetrace crds``.

Pure functions returning ``(exit code, text)``; argument parsing and printing
belong to :mod:`gatetrace.cli`.  Everything shown is redacted.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from gatetrace.policy import (
    crd,
    effective,
    errors,
    index,
    loading,
    model,
    redaction,
    services,
)

DEFAULT_ROOT_NAMESPACE = "gatetrace-system"
"""The operator's root namespace unless told otherwise (cluster defaults live there)."""

Result = tuple[int, str]


def crds() -> Result:
    """``gatetrace crds``: the CRD YAML."""
    return 0, crd.render_crd_yaml()


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` into a dict; raises ``ValueError`` naming the bad item."""
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad label {item!r}: expected key=value")
        labels[key.strip()] = value.strip()
    return labels


def _alone_problems(policy: model.TracingPolicy) -> list[errors.FieldError]:
    """Problems the policy has when applied alone over the built-in defaults."""
    # As a cluster default, so selector-bearing policies are checked the same way.
    alone = policy.model_copy(update={"spec": policy.spec.model_copy(update={"selector": None})})
    source = effective.PolicySource.from_policy(alone)
    root = policy.metadata.namespace
    pod = effective.GatewayPod(root, "validate", {})
    try:
        index.compute_effective([source], root_namespace=root, pod=pod)
    except errors.MergeFailed as e:
        return list(e.errors)
    return []


def validate(paths: Sequence[str]) -> Result:
    """``gatetrace policy validate FILE...``: exit 1 when any document is invalid."""
    documents = loading.load_paths(paths)
    if not documents:
        return 1, "no TracingPolicy documents found\n"
    lines: list[str] = []
    failed = 0
    for doc in documents:
        if doc.policy is None:
            failed += 1
            lines.extend(f"{doc.where}: {error}" for error in doc.problems)
            continue
        meta = doc.policy.metadata
        lines.append(f"{doc.where}: ok ({meta.namespace}/{meta.name})")
        for problem in _alone_problems(doc.policy):
            lines.append(f"{doc.where}: warning: over the built-in defaults, {problem}")
    lines.append(f"{len(documents) - failed} valid, {failed} invalid")
    return (1 if failed else 0), "\n".join(lines) + "\n"


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100)


def _indent(text: str, by: str = "  ") -> str:
    return "".join(by + line + "\n" for line in text.splitlines())


def _table(rows: Mapping[str, str]) -> str:
    width = max((len(k) for k in rows), default=0)
    return "".join(f"  {k.ljust(width)}  {v}\n" for k, v in rows.items())


def render_explanation(result: effective.EffectiveConfig, route_namespace: str | None) -> str:
    """The human explanation of an effective config (redacted)."""
    out = [f"version: {result.version}\n", "sources (lowest precedence first):\n"]
    out += [f"  {s.level:<9}  {s.key} (generation {s.generation})\n" for s in result.sources]
    if not result.sources:
        out.append("  none: built-in defaults only\n")
    out.append("config:\n" + _indent(_yaml(redaction.redact(result.config))))
    out.append("fields (set by):\n" + _table(result.provenance))
    out.append("conflicts:\n")
    out += [f"  {c.message()}\n" for c in result.conflicts] or ["  none\n"]
    out.append("namespace overrides clamped or ignored:\n")
    for c in result.clamps:
        detail = f": {c.requested} -> {c.applied}" if c.action == "clamped" else ""
        out.append(f"  {c.namespace} ({c.policy}) {c.path} {c.action}{detail}\n")
    if not result.clamps:
        out.append("  none\n")
    if route_namespace is not None:
        chosen = effective.sampling_for_namespace(result.config, route_namespace)
        prefix = f"namespaceOverrides.{route_namespace}.sampling."
        overridden = sorted(
            p.removeprefix(prefix) for p in result.provenance if p.startswith(prefix)
        )
        how = (
            f"overridden: {', '.join(overridden)}"
            if overridden
            else "no override: the gateway's sampling"
        )
        out.append(f"sampling for traffic routed to namespace {route_namespace} ({how}):\n")
        out.append(_indent(_yaml(chosen.model_dump(mode="json", exclude_none=True))))
    return "".join(out)


def explain(
    policies_dir: str,
    *,
    pod_namespace: str,
    pod_labels: Mapping[str, str],
    route_namespace: str | None = None,
    root_namespace: str = DEFAULT_ROOT_NAMESPACE,
) -> Result:
    """``gatetrace policy explain``: a pod's effective config and where each field came from."""
    documents = loading.load_paths([policies_dir])
    bad = [d for d in documents if d.policy is None]
    if bad:
        text = "".join(f"{d.where}: {e}\n" for d in bad for e in d.problems)
        return 1, text + f"{len(bad)} invalid document(s); fix them first\n"
    sources = [effective.PolicySource.from_policy(d.policy) for d in documents if d.policy]
    pod = effective.GatewayPod(pod_namespace, "explain", dict(pod_labels))
    labels = ",".join(f"{k}={v}" for k, v in sorted(pod_labels.items())) or "none"
    head = (
        f"gateway pod in namespace {pod_namespace} (labels: {labels}), "
        f"root namespace {root_namespace}, {len(sources)} policies\n"
    )
    try:
        result = index.compute_effective(sources, root_namespace=root_namespace, pod=pod)
    except errors.MergeFailed as e:
        return 1, head + "".join(f"invalid merged config: {err}\n" for err in e.errors)
    return 0, head + render_explanation(result, route_namespace)


def explain_service(
    policies_dir: str, service: str, *, root_namespace: str = DEFAULT_ROOT_NAMESPACE
) -> Result:
    """``gatetrace policy explain --service NAME``: the remote sampling strategy the
    operator serves that service, and the policy that set it."""
    documents = loading.load_paths([policies_dir])
    bad = [d for d in documents if d.policy is None]
    if bad:
        text = "".join(f"{d.where}: {e}\n" for d in bad for e in d.problems)
        return 1, text + f"{len(bad)} invalid document(s); fix them first\n"
    sources = [services.source_of(d.policy, root_namespace) for d in documents if d.policy]
    book = services.StrategyBook.build(sources)
    chosen = book.lookup(service)
    origin = (
        f"spec.services of {chosen.source}"
        if chosen.entry.name == service
        else f"the cluster default's sampling.sampler ({chosen.source})"
        if chosen.source
        else "the built-in default (no cluster default policy)"
    )
    lines = [f"service {service}: strategy from {origin}"]
    lines.append(json.dumps(services.strategy_response(chosen.entry), indent=2))
    lost = [
        f"  {policy} also names it; {winner} wins (older)"
        for policy, losses in sorted(book.losses.items())
        for name, winner in losses
        if name == service
    ]
    if lost:
        lines.append("conflicts:")
        lines.extend(lost)
    return 0, "\n".join(lines) + "\n"


def explain_json(result: effective.EffectiveConfig) -> str:
    """A machine-readable (redacted) explanation, for logs and tests."""
    body = {
        "version": result.version,
        "revision": result.revision,
        "config": redaction.redact(result.config),
        "sources": [
            {"namespace": s.namespace, "name": s.name, "generation": s.generation, "level": s.level}
            for s in result.sources
        ],
        "provenance": dict(result.provenance),
        "conflicts": [c.message() for c in result.conflicts],
        "clamps": [
            {"policy": c.policy, "namespace": c.namespace, "path": c.path, "action": c.action}
            for c in result.clamps
        ],
    }
    return json.dumps(body, indent=2, sort_keys=True)


__all__ = [
    "DEFAULT_ROOT_NAMESPACE",
    "crds",
    "explain",
    "explain_json",
    "explain_service",
    "parse_labels",
    "validate",
]
