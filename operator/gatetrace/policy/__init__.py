"""gatetrace.policy: the TracingPolicy API and how policies become gateway configs.

Holds the pydantic model (the single source of truth for the CRD), validation
with field-path errors, the precedence merge into one effective config per
gateway pod (with provenance, conflicts and clamps), redaction for human
renderings, and the logic of ``gatetrace policy`` and ``gatetrace crds``.

May import: gatetrace.runtime, pydantic, PyYAML and the stdlib. Never the
gateway, the operator, kopf, the Kubernetes client or aiohttp.
"""

from gatetrace.policy.crd import build_crd, render_crd_yaml
from gatetrace.policy.effective import (
    Clamp,
    Conflict,
    EffectiveConfig,
    GatewayPod,
    PolicySource,
    SourceRef,
    config_version,
    sampling_for_namespace,
    wire_config,
)
from gatetrace.policy.errors import (
    FieldError,
    LoadError,
    MergeFailed,
    PolicyError,
    ValidationFailed,
)
from gatetrace.policy.index import PolicyIndex, compute_all, compute_effective
from gatetrace.policy.loading import LoadedDocument, load_paths, load_text, parse_policy
from gatetrace.policy.model import (
    NamespaceOverride,
    TracingConfig,
    TracingPolicy,
    TracingPolicySpec,
)
from gatetrace.policy.redaction import redact
from gatetrace.policy.secretrefs import resolve_secrets
from gatetrace.policy.status import TracingPolicyStatus

__all__ = [
    "Clamp",
    "Conflict",
    "EffectiveConfig",
    "FieldError",
    "GatewayPod",
    "LoadError",
    "LoadedDocument",
    "MergeFailed",
    "NamespaceOverride",
    "PolicyError",
    "PolicyIndex",
    "PolicySource",
    "SourceRef",
    "TracingConfig",
    "TracingPolicy",
    "TracingPolicySpec",
    "TracingPolicyStatus",
    "ValidationFailed",
    "build_crd",
    "compute_all",
    "compute_effective",
    "config_version",
    "load_paths",
    "load_text",
    "parse_policy",
    "redact",
    "render_crd_yaml",
    "resolve_secrets",
    "sampling_for_namespace",
    "wire_config",
]
