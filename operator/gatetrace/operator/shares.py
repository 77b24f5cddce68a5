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
from typing import Any, Final

from gatetrace.operator import plan as _plan
from gatetrace.policy import sampling as _sampling

__all__ = ["RATE_KEYS", "share_rates"]

RATE_KEYS: Final = _sampling.rate_keys()
"""The traces/s fields (wire names), found by the unit the sampling models declare; they
occur only in sampling configs."""

_DECIMALS: Final = 6
_SMALLEST: Final = 10.0**-_DECIMALS


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


def divide(config: Mapping[str, Any], count: int) -> dict[str, Any]:
    """A copy of the config document with its traces/s fields divided by ``count``."""
    out = dict(config)
    out["sampling"] = _divided(config["sampling"], count)
    overrides = config.get("namespaceOverrides")
    if isinstance(overrides, Mapping):
        out["namespaceOverrides"] = {
            namespace: _divided(override, count) for namespace, override in overrides.items()
        }
    return out


def _divided(value: Any, count: int) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _share(item, count) if key in RATE_KEYS else _divided(item, count)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_divided(item, count) for item in value]
    return value


def _share(value: Any, count: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return value  # unset (None) or a 0 lower bound stays as it is
    return max(round(value / count, _DECIMALS), _SMALLEST)
