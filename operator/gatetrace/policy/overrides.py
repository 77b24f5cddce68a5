"""One namespace's sampling override, as a gateway with given limits receives it.

A namespace default with ``sampling`` in namespace N becomes
``namespaceOverrides[N]`` of every other gateway's effective config: clamped
to the gateway's ``sampling.namespaceOverrides`` limits, or ignored when they
do not allow overrides.  The result depends only on the policy and the
limits, so :class:`gatetrace.policy.index.PolicyIndex` computes it once per
distinct set of limits and shares it between pods.
"""

import dataclasses

import pydantic

from gatetrace.policy import clamp, effective, errors, merge, model, sampling

LIMIT_SOURCE = "<namespaceOverrides limit>"
"""Provenance of an override value the gateway's limits added (the traces/s cap)."""


@dataclasses.dataclass(frozen=True, slots=True)
class OverridePart:
    """``namespaceOverrides[namespace]`` for one set of limits (``override`` None: ignored)."""

    override: model.NamespaceOverride | None
    digest: str
    provenance: dict[str, str]
    clamps: tuple[effective.Clamp, ...]


def _top_field(path: str) -> str:
    """``sampling.rules[0].sampler.rate`` -> ``rules``."""
    rest = path.removeprefix("sampling.")
    return rest.split(".", 1)[0].split("[", 1)[0]


def build_part(
    namespace: str,
    policy: str,
    layer: merge.Layer,
    limits: sampling.NamespaceOverrideLimits,
) -> OverridePart:
    """The override that ``policy`` (its sampling fields: ``layer``) gives ``namespace``."""
    if not limits.allowed:
        ignored = effective.Clamp(policy, namespace, "sampling", "ignored")
        return OverridePart(None, "", {}, (ignored,))
    clamped_layer, notes = clamp.clamp_override(layer, limits)
    try:
        override = model.NamespaceOverride.model_validate({"sampling": clamped_layer})
    except pydantic.ValidationError as e:  # pragma: no cover - clamping keeps values valid
        raise errors.from_pydantic(
            e, subject=f"override {namespace}", cls=errors.MergeFailed
        ) from e
    prefix = ("namespaceOverrides", namespace, "sampling")
    clamped = {_top_field(n.path) for n in notes}
    provenance: dict[str, str] = {}
    for field_name in override.sampling.model_dump(mode="json", exclude_none=True):
        if field_name not in layer:
            origin = LIMIT_SOURCE
        elif field_name in clamped:
            origin = f"{policy} (clamped)"
        else:
            origin = policy
        provenance[errors.format_loc((*prefix, field_name))] = origin
    clamps = tuple(
        effective.Clamp(policy, namespace, n.path, "clamped", n.requested, n.applied) for n in notes
    )
    return OverridePart(override, effective.override_digest(override), provenance, clamps)
