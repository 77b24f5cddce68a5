"""The operator's view of a plan: which config each gateway pod should run.

:class:`~gatetrace.operator.planner.IndexPlanner` asks :mod:`gatetrace.policy` for the
effective config of every pod and keeps what delivery and status need: the config document, its
content hash, the policies it came from, conflicts and clamps.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatetrace.operator import pods as _pods

__all__ = ["PodClamp", "PodPlan", "PolicyRef"]


@dataclass(frozen=True, slots=True, order=True)
class PolicyRef:
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class PodClamp:
    """A namespace override of ``policy`` that the pod's gateway clamped or ignored."""

    policy: PolicyRef
    path: str
    action: str
    requested: str = ""
    applied: str = ""


@dataclass(frozen=True, slots=True)
class PodPlan:
    pod: _pods.GatewayTarget
    config: Mapping[str, Any]
    """The effective config document (TracingConfig, wire form, secrets resolved)."""
    version: str
    """Content hash of ``config``."""
    sources: tuple[PolicyRef, ...] = ()
    """Policies that contributed (winning ones), lowest precedence first."""
    conflicts: tuple[tuple[PolicyRef, PolicyRef], ...] = ()
    """(loser, winner) pairs at the same precedence level."""
    clamps: tuple[PodClamp, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    """For each field path, the ``namespace/name`` of the policy that set it."""
    error: str = ""
    """Why no config can be computed (the winning policies do not merge); not pushed."""
