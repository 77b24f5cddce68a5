"""Traces/s budgets split in equal shares: among a gateway's pods (``rateScope: gateway``,
by the operator) and among a pod's worker processes (by the gateway's supervisor: each
worker samples on its own, so a pod's 30 traces/s would be 30 per worker).

:func:`divide` divides every traces/s field of a config document (the sampler's, the
rules' samplers', the priority budget, the cap, the namespace overrides' and their limit;
found by the unit the sampling models declare, :data:`RATE_KEYS`).
"""

from collections.abc import Mapping
from typing import Any, Final

from gatetrace.policy import sampling as _sampling

__all__ = ["RATE_KEYS", "divide"]

RATE_KEYS: Final = _sampling.rate_keys()
"""The traces/s fields (wire names), found by the unit the sampling models declare; they
occur only in sampling configs."""

_DECIMALS: Final = 6
_SMALLEST: Final = 10.0**-_DECIMALS


def divide(config: Mapping[str, Any], count: int) -> dict[str, Any]:
    """A copy of the config document with its traces/s fields divided by ``count``."""
    out = dict(config)
    if count <= 1:
        return out
    if "sampling" in config:
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
