"""What the reconciler keeps and where its results go: policy records (with their last
valid generation), per-pod push state, and the :class:`Sink` protocol. Its own module so
that :mod:`.conditions` (status) and :mod:`.core` (the loop) both build on it without
importing each other.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatetrace.operator import plan as _plan
from gatetrace.operator import pods as _pods

__all__ = [
    "GatewayKey",
    "Planner",
    "PodState",
    "PolicyRecord",
    "Sink",
    "SinkRefusedError",
    "may_apply",
]

GatewayKey = tuple[str, str]
"""(namespace, gateway name)."""


class SinkRefusedError(Exception):
    """The sink will not store a gateway's config (e.g. its ConfigMap belongs to someone
    else); the message says why. That gateway's pods are not pushed."""


class Sink(Protocol):
    """Where the reconciler's results go."""

    async def load_revision(self, gateway: GatewayKey) -> tuple[int, str] | None:
        """The (revision, version) last stored for the gateway, if any."""
        ...

    async def store_config(
        self,
        gateway: GatewayKey,
        revision: int,
        version: str,
        config: Mapping[str, Any],
        *,
        combined: str,
        sources: Sequence[Mapping[str, str]] = (),
    ) -> None:
        """Keep the gateway's config (its ConfigMap). ``combined`` hashes the configs of
        all its pods, and comes back from :meth:`load_revision` as the version; ``sources``
        names the policies it came from."""
        ...

    async def publish_status(self, ref: _plan.PolicyRef, status: Mapping[str, Any]) -> None: ...

    async def emit_event(
        self, ref: _plan.PolicyRef, type_: str, reason: str, message: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A TracingPolicy as the reconciler sees it."""

    ref: _plan.PolicyRef
    generation: int
    created: str
    """creationTimestamp (RFC 3339), the conflict tie-breaker."""
    body: Mapping[str, Any]
    """The whole object (apiVersion, kind, metadata, spec)."""
    errors: tuple[tuple[str, str], ...] = ()
    """Validation errors (field path, message); such a policy is left out of every plan."""
    status: Mapping[str, Any] = field(default_factory=dict)
    """The status the object carries now (so unchanged status is not rewritten)."""
    last_valid: Mapping[str, Any] | None = None
    """For an invalid generation: the body of the last valid one, which stays in force."""
    last_valid_generation: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def stale(self) -> bool:
        """Invalid now, with an earlier valid generation still in force."""
        return not self.valid and self.last_valid is not None

    @property
    def remembered_valid_generation(self) -> int | None:
        """For an invalid record whose last valid body is not held here (the operator
        restarted): the last valid generation its status remembers, if any."""
        if self.valid or self.last_valid is not None:
            return None
        remembered = self.status.get("lastValidGeneration")
        if isinstance(remembered, int) and not isinstance(remembered, bool):
            return remembered
        observed = self.status.get("observedGeneration")
        conditions = self.status.get("conditions")
        if not isinstance(observed, int) or not isinstance(conditions, list):
            return None
        accepted = any(
            isinstance(c, Mapping) and c.get("type") == "Accepted" and c.get("status") == "True"
            for c in conditions
        )
        return observed if accepted else None

    def in_force(self) -> "PolicyRecord | None":
        """The record the planner uses: this one if valid, else its last valid generation
        (None: a policy that was never valid contributes nothing)."""
        if self.valid:
            return self
        if self.last_valid is None:
            return None
        return PolicyRecord(self.ref, self.last_valid_generation, self.created, self.last_valid)

    def keeping(self, held: "PolicyRecord | None") -> "PolicyRecord":
        """This record, carrying ``held``'s generation in force if this one is invalid
        (same object: a policy deleted and re-created starts afresh)."""
        if self.valid or self.last_valid is not None or held is None or held.uid != self.uid:
            return self
        source = held.in_force()
        if source is None:
            return self
        return dataclasses.replace(
            self, last_valid=source.body, last_valid_generation=source.generation
        )

    @property
    def uid(self) -> str:
        """metadata.uid: tells a re-created policy from an older generation of this one."""
        meta = self.body.get("metadata")
        return str(meta.get("uid") or "") if isinstance(meta, Mapping) else ""


@dataclass(slots=True)
class PodState:
    revision: int = 0
    version: str = ""
    state: str = "Pending"
    message: str = "not pushed yet"
    running_revision: int | None = None
    running_version: str = ""


Planner = Callable[
    [Sequence[PolicyRecord], Sequence[_pods.GatewayTarget]], dict[str, _plan.PodPlan]
]


def may_apply(record: PolicyRecord, pod: _pods.GatewayTarget) -> bool:
    """Whether a policy could take part in ``pod``'s config, judged from what can be read
    of an invalid body: a readable ``matchLabels`` selector limits it to the pods it
    matches in its namespace; anything else (no selector: a cluster or namespace default,
    or an override for traffic routed into its namespace) may reach any pod."""
    spec = record.body.get("spec")
    selector = spec.get("selector") if isinstance(spec, Mapping) else None
    if not isinstance(selector, Mapping) or set(selector) != {"matchLabels"}:
        return True
    labels = selector["matchLabels"]
    if not isinstance(labels, Mapping):
        return True
    if pod.namespace != record.ref.namespace:
        return False
    return all(pod.labels.get(str(k)) == v for k, v in labels.items())
