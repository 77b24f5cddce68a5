"""Per-gateway config revisions: they only grow.

A new revision is taken when the set of configs of a gateway's pods changes, or when a
pod is found running a revision at least as high as ours with other content (someone
PUT by hand, or a previous operator got further than its ConfigMap), so a takeover
never pushes a stale revision over a newer one.
"""

import hashlib
from collections.abc import Mapping, Sequence

from gatetrace.operator import plan as _plan
from gatetrace.operator import records_model as _records_model

__all__ = ["GatewayRevisions"]


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class GatewayRevisions:
    """The revision and combined config digest last taken for each gateway."""

    def __init__(self) -> None:
        self._taken: dict[_records_model.GatewayKey, tuple[int, str]] = {}

    def forget(self) -> None:
        """Reload each gateway's revision from the sink (its ConfigMap) when next asked."""
        self._taken.clear()

    def combined(self, gateway: _records_model.GatewayKey) -> str:
        """The digest of the set of configs the gateway's last revision was taken for."""
        return self._taken[gateway][1]

    async def take(
        self,
        gateway: _records_model.GatewayKey,
        plans: Sequence[_plan.PodPlan],
        pod_states: Mapping[str, _records_model.PodState],
        sink: _records_model.Sink,
    ) -> int:
        """The revision to push ``plans`` with: the current one when nothing changed."""
        combined = _digest(sorted({p.version for p in plans}))
        current = self._taken.get(gateway)
        if current is None:
            current = await sink.load_revision(gateway) or (0, "")
        revision, stored = current
        floor = 0
        for plan in plans:
            state = pod_states.get(plan.pod.key)
            if (
                state
                and state.running_revision is not None
                and state.running_version != plan.version
            ):
                floor = max(floor, state.running_revision)
        if stored != combined or floor >= revision or revision == 0:
            revision = max(revision, floor) + 1
        self._taken[gateway] = (revision, combined)
        return revision
