"""Which pods a converge pass must not push while a policy is invalid with no last valid
generation to fall back on (standalone mode without a status folder; or a policy whose
status says it had one, which this operator instance never saw)."""

from collections.abc import Iterable, Mapping

from gatetrace.operator import plan as _plan
from gatetrace.operator import records_model as _records_model

__all__ = ["hold_back"]


def hold_back(
    policies: Iterable[_records_model.PolicyRecord],
    plans: Mapping[str, _plan.PodPlan],
    *,
    hold_back_invalid: bool,
) -> dict[str, _plan.PodPlan]:
    """``plans`` with every pod such a policy may apply to turned into an error plan
    (not pushed, Failed with the reason)."""
    blocking = [
        r
        for r in policies
        if not r.valid
        and r.last_valid is None
        and (hold_back_invalid or r.remembered_valid_generation is not None)
    ]
    if not blocking:
        return dict(plans)
    held: dict[str, _plan.PodPlan] = {}
    for key, plan in plans.items():
        refs = tuple(r.ref for r in blocking if _records_model.may_apply(r, plan.pod))
        if not refs:
            held[key] = plan
            continue
        names = ", ".join(ref.key for ref in refs)
        if hold_back_invalid:
            error = (
                f"not pushed: {names} is invalid and no earlier valid generation is "
                "known (keep one with --status-dir)"
            )
        else:
            error = (
                f"not pushed: {names} is invalid and its last valid generation is not "
                "held by this operator instance (it restarted): the pod keeps running "
                "it until the policy is fixed"
            )
        held[key] = _plan.PodPlan(plan.pod, {}, "", sources=refs, error=error)
    return held
