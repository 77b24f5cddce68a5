"""gatetrace.operator: the kopf operator and the standalone reconciler.

Watches TracingPolicies and gateway pods, computes each pod's effective config
and pushes it to the pod's admin API. May import: gatetrace.runtime,
gatetrace.policy, kopf, the Kubernetes client, aiohttp (as an HTTP client).
Never gatetrace.gateway.

The kopf side (:mod:`.handlers`, :mod:`.kube`, :mod:`.main`) is imported on
demand, so the standalone reconciler works without touching kopf.
"""

from gatetrace.operator.core import PodState, PolicyRecord, Reconciler, Sink
from gatetrace.operator.delivery import (
    AdminClient,
    Pusher,
    PushOutcome,
    PushRequest,
    PushResult,
    RetryPolicy,
)
from gatetrace.operator.plan import PodClamp, PodPlan, PolicyRef
from gatetrace.operator.planner import IndexPlanner
from gatetrace.operator.pods import GATEWAY_LABEL, GatewayTarget, pod_from_object
from gatetrace.operator.settings import OperatorSettings
from gatetrace.operator.standalone import FileSink, GatewaySpec, PolicyFolder, parse_gateway

__all__ = [
    "GATEWAY_LABEL",
    "AdminClient",
    "FileSink",
    "GatewaySpec",
    "GatewayTarget",
    "IndexPlanner",
    "OperatorSettings",
    "PodClamp",
    "PodPlan",
    "PodState",
    "PolicyFolder",
    "PolicyRecord",
    "PolicyRef",
    "PushOutcome",
    "PushRequest",
    "PushResult",
    "Pusher",
    "Reconciler",
    "RetryPolicy",
    "Sink",
    "parse_gateway",
    "pod_from_object",
]
