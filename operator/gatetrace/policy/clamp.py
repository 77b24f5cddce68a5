"""Clamping a namespace's sampling override to what a gateway allows.

A policy without selector in namespace N may change sampling for traffic
routed to services in N, but only within the gateway's
``sampling.namespaceOverrides`` limits: probabilities above ``maxRate`` and
traces/s above ``maxTracesPerSecond`` are lowered (never rejected), an
always-on ``const`` sampler becomes ``probabilistic`` at ``maxRate``, and the
override's traffic is capped at ``maxTracesPerSecond``.  Every change is
reported as a :class:`ClampNote` so the operator can put it in the status.
"""

import dataclasses
import json
from typing import Any

from gatetrace.policy import merge, sampling, wire


@dataclasses.dataclass(frozen=True, slots=True)
class ClampNote:
    """One value of an override that was lowered; ``path`` is relative to the override."""

    path: str
    requested: str
    applied: str


_PROBABILITIES = sampling.sampler_fields(wire.PROBABILITY)
_TRACES_PER_SECOND = sampling.sampler_fields(wire.TRACES_PER_SECOND)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class _Clamper:
    def __init__(self, limits: sampling.NamespaceOverrideLimits) -> None:
        self.max_rate = limits.max_rate
        self.max_tps = limits.max_traces_per_second
        self.notes: list[ClampNote] = []

    def _cap(self, obj: dict[str, Any], key: str, limit: float | None, path: str) -> None:
        value = obj.get(key)
        if limit is not None and isinstance(value, int | float) and value > limit:
            obj[key] = limit
            self.notes.append(ClampNote(f"{path}.{key}", _show(value), _show(limit)))

    def sampler(self, spec: dict[str, Any], path: str) -> dict[str, Any]:
        out = dict(spec)
        if out.get("type") == "const":
            if out.get("decision") is True and self.max_rate < 1.0:
                replaced = {"type": "probabilistic", "rate": self.max_rate}
                self.notes.append(ClampNote(path, _show(spec), _show(replaced)))
                return replaced
            return out
        # every probability and every traces/s field of any sampler type, found by the
        # unit its model declares: a new sampler field cannot escape the limits
        for key in list(out):
            if key in _PROBABILITIES:
                self._cap(out, key, self.max_rate, path)
            elif key in _TRACES_PER_SECOND:
                self._cap(out, key, self.max_tps, path)
        return out

    def sampling(self, layer: merge.Layer) -> merge.Layer:
        out = dict(layer)
        if isinstance(out.get("sampler"), dict):
            out["sampler"] = self.sampler(out["sampler"], "sampling.sampler")
        if isinstance(out.get("rules"), list):
            out["rules"] = [
                {**rule, "sampler": self.sampler(rule["sampler"], f"sampling.rules[{i}].sampler")}
                for i, rule in enumerate(out["rules"])
            ]
        if isinstance(out.get("prioritize"), dict):
            default = sampling.Prioritize.model_fields["max_per_second"].default
            prioritize = {"maxPerSecond": default, **out["prioritize"]}
            self._cap(prioritize, "maxPerSecond", self.max_tps, "sampling.prioritize")
            out["prioritize"] = prioritize
        if self.max_tps is not None:
            requested = out.get("maxTracesPerSecond")
            if requested is None:
                # Not a clamp of anything the policy asked for: the gateway's cap applies.
                out["maxTracesPerSecond"] = self.max_tps
            else:
                self._cap(out, "maxTracesPerSecond", self.max_tps, "sampling")
        return out


OVERRIDABLE = tuple(
    info.alias or name for name, info in sampling.SamplingOverride.model_fields.items()
)
"""Wire names of the sampling fields a namespace override may set (its model's fields)."""


def override_layer(spec_sampling: sampling.Sampling) -> merge.Layer:
    """The part of a namespace default's ``sampling`` that acts as an override."""
    layer = merge.layer_of(spec_sampling)
    return {k: v for k, v in layer.items() if k in OVERRIDABLE}


def clamp_override(
    layer: merge.Layer, limits: sampling.NamespaceOverrideLimits
) -> tuple[merge.Layer, tuple[ClampNote, ...]]:
    """``layer`` (an override's sampling fields) lowered to ``limits``, and what changed."""
    clamper = _Clamper(limits)
    clamped = clamper.sampling(layer)
    return clamped, tuple(clamper.notes)
