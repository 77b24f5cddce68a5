"""The ``status`` of a TracingPolicy, written by the operator.

Conditions are standard Kubernetes condition objects.  ``pods`` says which
gateway pod runs which revision; ``clamps`` lists namespace overrides that a
gateway clamped or ignored.
"""

import datetime
from typing import Annotated, Final, Literal

import pydantic

from gatetrace.policy import wire

ACCEPTED: Final = "Accepted"
"""The spec is valid and the operator took it into account."""
APPLIED: Final = "Applied"
"""Every targeted gateway pod runs a config including this policy's generation."""
CONFLICTED: Final = "Conflicted"
"""An older policy at the same precedence level wins for some pods."""
DEGRADED: Final = "Degraded"
"""Some pods failed to apply, or the merged config was invalid."""
CONDITION_TYPES: Final = (ACCEPTED, APPLIED, CONFLICTED, DEGRADED)


class _StatusModel(wire.WireModel):
    # Status is written by the operator and read back from the API server,
    # whose JSON may carry timestamps as strings: validate leniently.
    model_config = pydantic.ConfigDict(strict=False)


class Condition(_StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: Annotated[str, pydantic.Field(min_length=1, max_length=316)]
    """Accepted, Applied, Conflicted or Degraded."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[
        str,
        pydantic.Field(
            min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
        ),
    ]
    """One CamelCase word saying why."""
    message: Annotated[str, pydantic.Field(max_length=32768)] = ""
    """Human readable details."""
    last_transition_time: datetime.datetime
    """When the status last changed."""
    observed_generation: Annotated[int, pydantic.Field(ge=0)] | None = None
    """The policy generation the condition was computed from."""


class PodStatus(_StatusModel):
    """Where one targeted gateway pod stands."""

    name: Annotated[str, pydantic.Field(min_length=1, max_length=253)]
    """Pod name."""
    namespace: Annotated[str, pydantic.Field(max_length=63)] = ""
    """Pod namespace."""
    revision: Annotated[int, pydantic.Field(ge=0)] = 0
    """Config revision the pod reported last."""
    version: Annotated[str, pydantic.Field(max_length=128)] = ""
    """Content hash of the config the pod runs."""
    state: Literal["Applied", "Pending", "Failed"]
    """Applied, Pending or Failed."""
    message: Annotated[str, pydantic.Field(max_length=4096)] = ""
    """Why the pod is Pending or Failed."""


class ClampStatus(_StatusModel):
    """A namespace override of this policy that a gateway clamped or ignored."""

    gateway: Annotated[str, pydantic.Field(max_length=320)] = ""
    """namespace/name of the gateway pod (or its config) applying the limit."""
    path: Annotated[str, pydantic.Field(max_length=1024)]
    """Field of the override that was changed, e.g. sampling.sampler.rate."""
    action: Literal["clamped", "ignored"]
    """clamped: reduced to the gateway's limit; ignored: overrides not allowed."""
    requested: Annotated[str, pydantic.Field(max_length=256)] = ""
    """The value the policy asked for."""
    applied: Annotated[str, pydantic.Field(max_length=256)] = ""
    """The value the gateway uses."""


class TracingPolicyStatus(_StatusModel):
    """What the operator did with the policy."""

    observed_generation: Annotated[int, pydantic.Field(ge=0)] | None = None
    """The generation of the spec the status describes."""
    last_valid_generation: Annotated[int, pydantic.Field(ge=0)] | None = None
    """Set while the spec is invalid: the generation still in force (last known good)."""
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    """Accepted, Applied, Conflicted, Degraded."""
    target_pods: Annotated[int, pydantic.Field(ge=0)] = 0
    """Gateway pods whose effective config includes this policy."""
    applied_pods: Annotated[int, pydantic.Field(ge=0)] = 0
    """Target pods that confirmed running it."""
    pods: list[PodStatus] = pydantic.Field(default_factory=list)
    """Per-pod state."""
    clamps: list[ClampStatus] = pydantic.Field(default_factory=list)
    """Namespace overrides of this policy that gateways clamped or ignored."""
