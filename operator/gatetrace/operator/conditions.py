"""TracingPolicy status: conditions, per-pod entries, clamps, and the events
that their transitions deserve. Pure functions of the reconciler's state."""

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gatetrace.operator import plan as _plan
from gatetrace.operator import records_model as _core
from gatetrace.policy import status as _status

__all__ = ["Event", "policy_status", "without_times"]

Event = tuple[str, str, str]
"""(type Normal|Warning, reason, message)."""

_MAX_PODS_IN_STATUS = 100
_MAX_NAMES_IN_MESSAGE = 5
_MAX_MESSAGE = 32_768
"""metav1.Condition's message limit (also :class:`gatetrace.policy.status.Condition`)."""


def _rfc3339(ts: float) -> str:
    moment = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _names(items: Iterable[str]) -> str:
    items = sorted(items)
    shown = ", ".join(items[:_MAX_NAMES_IN_MESSAGE])
    more = len(items) - _MAX_NAMES_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _condition(
    type_: str, true: bool, reason: str, message: str, generation: int
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if true else "False",
        "reason": reason,
        "message": message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "...",
        "observedGeneration": generation,
    }


def policy_status(
    record: _core.PolicyRecord,
    plans: Mapping[str, _plan.PodPlan],
    pod_states: Mapping[str, _core.PodState],
    *,
    previous: Mapping[str, Any],
    now: float,
    service_losses: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Any], list[Event]]:
    """The status to write for one policy and the events its changes deserve.

    ``service_losses``: (service, winning policy) for each ``spec.services`` entry of this
    policy that an older policy overrides (:class:`gatetrace.policy.services.StrategyBook`).
    """
    if not record.valid:
        detail = "; ".join(f"{loc}: {msg}" for loc, msg in record.errors[:10])
        if record.stale:
            return _stale_status(record, detail, plans, pod_states, previous, now)
        return _invalid_status(record, detail, previous, now)
    ref, generation = record.ref, record.generation
    rows = _pod_rows(ref, plans, pod_states)
    clamps = _clamp_rows(ref, plans)
    conditions = [
        _condition("Accepted", True, "Valid", "the spec is valid", generation),
        _applied_condition(rows, generation),
        _conflict_condition(_winners(ref, plans), generation, service_losses),
        _degraded_condition(rows.failed, generation),
    ]
    status = {
        "observedGeneration": generation,
        "targetPods": rows.total,
        "appliedPods": rows.applied,
        "pods": rows.pods,
        "clamps": clamps,
    }
    return _finish(status, conditions, previous, now, [], clamps=clamps)


def _invalid_status(
    record: _core.PolicyRecord, detail: str, previous: Mapping[str, Any], now: float
) -> tuple[dict[str, Any], list[Event]]:
    """A generation that is invalid with no earlier valid one here (or only remembered by
    its status after an operator restart: then its pods are held back, Degraded)."""
    generation = record.generation
    conditions = [_condition("Accepted", False, "Invalid", detail, generation)]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "targetPods": 0,
        "appliedPods": 0,
        "pods": [],
        "clamps": [],
    }
    remembered = record.remembered_valid_generation
    if remembered is not None:
        stale = (
            f"generation {generation} is invalid; generation {remembered} (the last "
            "valid one) stays on the gateway pods, which are not pushed until it is fixed"
        )
        conditions.append(_condition("Degraded", True, "StaleGeneration", stale, generation))
        status["lastValidGeneration"] = remembered
        detail = f"{detail} ({stale})"
    return _finish(status, conditions, previous, now, [("Warning", "Invalid", detail)])


@dataclass
class _PodRows:
    """The per-pod part of a valid policy's status."""

    pods: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    applied: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    revisions: set[int] = field(default_factory=set)


def _pod_rows(
    ref: _plan.PolicyRef,
    plans: Mapping[str, _plan.PodPlan],
    pod_states: Mapping[str, _core.PodState],
) -> _PodRows:
    targets = [p for p in plans.values() if ref in p.sources]
    rows = _PodRows(total=len(targets))
    for plan in sorted(targets, key=lambda p: p.pod.key):
        state = pod_states.get(plan.pod.key)
        if state is None:
            continue
        if state.state == "Applied":
            rows.applied += 1
            rows.revisions.add(state.revision)
        elif state.state == "Failed":
            rows.failed[plan.pod.key] = state.message
        if len(rows.pods) < _MAX_PODS_IN_STATUS:
            rows.pods.append(
                {
                    "name": plan.pod.name,
                    "namespace": plan.pod.namespace,
                    "revision": state.revision,
                    "version": state.version,
                    "state": state.state,
                    "message": state.message[:4000],
                }
            )
    return rows


def _winners(ref: _plan.PolicyRef, plans: Mapping[str, _plan.PodPlan]) -> dict[str, set[str]]:
    """Older policies that won over ``ref`` at the same precedence level, and where."""
    winners: dict[str, set[str]] = {}
    for plan in plans.values():
        for loser, winner in plan.conflicts:
            if loser == ref:
                winners.setdefault(winner.key, set()).add(plan.pod.key)
    return winners


def _clamp_rows(ref: _plan.PolicyRef, plans: Mapping[str, _plan.PodPlan]) -> list[dict[str, Any]]:
    """Namespace overrides of ``ref`` that gateways clamped or ignored, once per gateway."""
    clamps: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str, str]] = set()
    for plan in sorted(plans.values(), key=lambda p: p.pod.key):
        for clamp in plan.clamps:
            if clamp.policy != ref:
                continue
            gateway = f"{plan.pod.namespace}/{plan.pod.gateway}"
            key = (gateway, clamp.path, clamp.action, clamp.requested, clamp.applied)
            if key in seen:
                continue
            seen.add(key)
            clamps.append(
                {
                    "gateway": gateway,
                    "path": clamp.path,
                    "action": clamp.action,
                    "requested": clamp.requested,
                    "applied": clamp.applied,
                }
            )
    return clamps


def _applied_condition(rows: _PodRows, generation: int) -> dict[str, Any]:
    total, applied = rows.total, rows.applied
    if total and applied == total:
        at = ", ".join(str(r) for r in sorted(rows.revisions))
        word = "revision" if len(rows.revisions) == 1 else "revisions"
        return _condition(
            "Applied", True, "Applied", f"{applied}/{total} pods at {word} {at}", generation
        )
    if not total:
        message = "no gateway pod runs this policy (none selected, or another policy wins)"
        return _condition("Applied", False, "NoTargets", message, generation)
    reason = "PushFailed" if rows.failed else "Pending"
    return _condition("Applied", False, reason, f"{applied}/{total} pods applied", generation)


def _conflict_condition(
    winners: Mapping[str, set[str]],
    generation: int,
    service_losses: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    if not winners and not service_losses:
        return _condition("Conflicted", False, "NoConflict", "", generation)
    parts = [f"{winner} wins for {_names(pods)}" for winner, pods in sorted(winners.items())]
    by_winner: dict[str, set[str]] = {}
    for service, winner in service_losses:
        by_winner.setdefault(winner, set()).add(service)
    parts += [
        f"{winner} wins for service {_names(services)}"
        for winner, services in sorted(by_winner.items())
    ]
    message = "; ".join(parts) + " (older policy at the same precedence level)"
    return _condition("Conflicted", True, "OlderPolicyWins", message, generation)


def _degraded_condition(failed: Mapping[str, str], generation: int) -> dict[str, Any]:
    if not failed:
        return _condition("Degraded", False, "Healthy", "", generation)
    message = "; ".join(f"{pod}: {why}" for pod, why in sorted(failed.items())[:10])
    return _condition("Degraded", True, "PodsFailing", message, generation)


def _stale_status(
    record: _core.PolicyRecord,
    detail: str,
    plans: Mapping[str, _plan.PodPlan],
    pod_states: Mapping[str, _core.PodState],
    previous: Mapping[str, Any],
    now: float,
) -> tuple[dict[str, Any], list[Event]]:
    """An invalid generation whose last valid one stays in force: the pods' status is the
    in-force generation's, Accepted says why this one was refused, Degraded that it is stale."""
    in_force = record.in_force()
    assert in_force is not None
    status, events = policy_status(in_force, plans, pod_states, previous={}, now=now)
    generation = record.generation
    if in_force.generation == generation:  # unchanged spec, e.g. its Secret went away
        stale = (
            f"generation {generation} no longer passes the operator's checks; "
            "as it last passed them it stays in force"
        )
    else:
        stale = (
            f"generation {generation} is invalid; generation {in_force.generation} "
            "(the last valid one) stays in force"
        )
    conditions = [
        _condition("Accepted", False, "Invalid", detail, generation),
        *(
            {**c, "observedGeneration": generation}
            for c in status["conditions"]
            if c["type"] not in {"Accepted", "Degraded"}
        ),
        _condition("Degraded", True, "StaleGeneration", stale, generation),
    ]
    for condition in conditions:
        condition.pop("lastTransitionTime", None)
    status = {k: v for k, v in status.items() if k != "conditions"}
    status["observedGeneration"] = generation
    status["lastValidGeneration"] = in_force.generation
    events = [("Warning", "Invalid", f"{detail} ({stale})")]
    return _finish(status, conditions, previous, now, [])[0], events


def _finish(
    status: dict[str, Any],
    conditions: list[dict[str, Any]],
    previous: Mapping[str, Any],
    now: float,
    events: list[Event],
    *,
    clamps: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[Event]]:
    before = {c.get("type"): c for c in previous.get("conditions") or () if isinstance(c, dict)}
    for condition in conditions:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        stamp = old.get("lastTransitionTime") if same and old is not None else None
        condition["lastTransitionTime"] = stamp or _rfc3339(now)
        changed = (
            old is None
            or old.get("status") != condition["status"]
            or old.get("message") != condition["message"]
        )
        if not changed or condition["status"] != "True":
            continue
        kind = condition["type"]
        if kind == "Applied":
            events.append(("Normal", "Applied", condition["message"]))
        elif kind == "Degraded":
            events.append(("Warning", "PushFailed", condition["message"]))
        elif kind == "Conflicted":
            events.append(("Warning", "Conflicted", condition["message"]))
    if clamps and clamps != list(previous.get("clamps") or ()):
        message = "; ".join(
            f"{c['gateway']}: {c['path']} {c['action']}"
            + (f" {c['requested']} -> {c['applied']}" if c["action"] == "clamped" else "")
            for c in clamps[:10]
        )
        events.append(("Warning", "Clamped", message))
    status["conditions"] = conditions
    return _typed(status), events


def _typed(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` checked against :class:`gatetrace.policy.status.TracingPolicyStatus`, the
    one definition of its shape (a misspelt or out-of-bounds field fails here, in the
    operator's tests, not as an API server rejection), in its wire form."""
    typed = _status.TracingPolicyStatus.model_validate(status)
    wire: dict[str, Any] = typed.model_dump(mode="json", by_alias=True, exclude_none=True)
    for condition in wire["conditions"]:  # RFC 3339 as the API server writes it
        condition["lastTransitionTime"] = _rfc3339(
            datetime.datetime.fromisoformat(condition["lastTransitionTime"]).timestamp()
        )
    return wire


def without_times(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status without transition times, to tell whether anything really changed."""
    copy = dict(status)
    copy["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions") or ()
        if isinstance(c, dict)
    ]
    return copy
