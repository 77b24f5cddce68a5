"""Gateway-wide traces/s budgets (``sampling.rateScope: gateway``) split among pods.

A gateway's pods sample on their own, so a budget of 30 traces/s is 90 with
three replicas. With ``rateScope: gateway`` the operator divides every
traces/s field of the sampling config (the sampler's, the rules' samplers',
the priority budget, the cap, the namespace overrides' and their limit) by the
number of the gateway's deliverable (Ready, with an IP) pods before pushing,
and divides again whenever that number changes. The divided config gets its
own version (``<version>/<pods>``), so a change of pod count is a new config
for every pod of the gateway; the ConfigMap holds it too, so a pod starting
meanwhile runs the current share until the operator counts it in.
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from gatetrace.operator import plan as _plan
from gatetrace.policy import rate_shares as _rate_shares

__all__ = ["RATE_KEYS", "divide", "share_rates"]

RATE_KEYS: Final = _rate_shares.RATE_KEYS
divide = _rate_shares.divide


def share_rates(plans: Mapping[str, _plan.PodPlan]) -> dict[str, _plan.PodPlan]:
    """The plans with gateway-wide budgets divided among each gateway's pods (others as
    they are)."""
    pods = Counter(p.pod.gateway_key for p in plans.values() if p.pod.deliverable)
    out: dict[str, _plan.PodPlan] = {}
    for key, plan in plans.items():
        sampling = plan.config.get("sampling")
        if plan.error or not isinstance(sampling, Mapping):
            out[key] = plan
            continue
        if sampling.get("rateScope") != "gateway":
            out[key] = plan
            continue
        count = max(pods[plan.pod.gateway_key], 1)
        config = divide(plan.config, count)
        out[key] = replace(plan, config=config, version=f"{plan.version}/{count}")
    return out
