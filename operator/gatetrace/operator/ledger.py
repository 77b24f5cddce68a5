"""What each gateway pod runs, as far as pushes tell: the pod states a converge pass
reads to decide what to push, and the push results that move them."""

from collections.abc import MutableMapping, Sequence

from gatetrace.operator import delivery as _delivery
from gatetrace.operator import metrics as _metrics
from gatetrace.operator import plan as _plan
from gatetrace.operator import records_model as _records_model
from gatetrace.policy import admin_protocol as _protocol

__all__ = ["push_needed", "record_results"]

PodStates = MutableMapping[str, _records_model.PodState]


def push_needed(
    pod_states: PodStates, plan: _plan.PodPlan, revision: int
) -> list[_delivery.PushRequest]:
    """Move the pod's state to ``plan`` at ``revision``; the push it needs, if any."""
    pod = plan.pod
    state = pod_states.setdefault(pod.key, _records_model.PodState())
    if state.revision != revision or state.version != plan.version:
        state.revision, state.version = revision, plan.version
        state.state, state.message = "Pending", f"revision {revision} not pushed yet"
    if plan.error:
        state.state, state.message = "Failed", plan.error[:1000]
        return []
    url = pod.admin_url
    if not pod.deliverable or url is None:
        state.state, state.message = "Pending", "waiting for the pod to be Ready with an IP"
        return []
    if state.state == "Applied":
        return []
    sources = _protocol.source_entries(plan.sources)
    return [_delivery.PushRequest(pod.key, url, revision, plan.version, plan.config, sources)]


def record_results(
    pod_states: PodStates,
    results: Sequence[_delivery.PushResult],
    metrics: _metrics.OperatorMetrics,
) -> bool:
    """Apply push results to the pod states; True when a pod runs a newer revision with
    other content (the next pass takes a higher one)."""
    again = False
    for result in results:
        metrics.pushes.inc((result.outcome.value,))
        metrics.push_seconds.observe(result.seconds)
        state = pod_states.get(result.target)
        if state is None or state.revision != result.revision:
            continue
        if result.applied:
            state.state, state.message = "Applied", ""
            state.running_revision, state.running_version = result.revision, result.version
        elif result.outcome is _delivery.PushOutcome.STALE:
            state.state, state.message = "Pending", result.message
            if result.running_revision is not None:
                state.running_revision = result.running_revision
                state.running_version = "?"  # unknown content: take a higher revision
                again = True
        elif result.outcome is _delivery.PushOutcome.SUPERSEDED:
            continue
        else:
            state.state = "Failed"
            state.message = f"{result.outcome.value}: {result.message}"[:1000]
    return again
