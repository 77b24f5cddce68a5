"""The effective config of one gateway pod, its content hash, and its explanation.

Values here are what the operator computes (see :mod:`gatetrace.policy.index`)
and pushes; the gateway receives only :attr:`EffectiveConfig.config` and the
``revision``.  ``version`` is a content hash of the config: equal configs have
equal versions however they were computed (:func:`config_version`).
"""

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from gatetrace.policy import model, sampling

Level = Literal["cluster", "namespace", "workload", "override"]
"""Precedence level a policy acts at for a pod (``override``: another namespace's)."""

PodKey = tuple[str, str]
"""(namespace, name) of a gateway pod."""

_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class PolicySource:
    """A policy as the merge sees it: identity, age and spec."""

    namespace: str
    name: str
    spec: model.TracingPolicySpec
    generation: int = 0
    creation_timestamp: datetime.datetime | None = None

    @property
    def key(self) -> str:
        """``namespace/name``, how provenance and conflicts name the policy."""
        return f"{self.namespace}/{self.name}"

    @property
    def age_key(self) -> tuple[datetime.datetime, str]:
        """Sort key: oldest first (creationTimestamp, then name); undated sorts as oldest."""
        stamp = self.creation_timestamp or _EPOCH
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        return (stamp, self.name)

    @classmethod
    def from_policy(cls, policy: model.TracingPolicy) -> "PolicySource":
        """The merge's view of a TracingPolicy object."""
        meta = policy.metadata
        return cls(
            namespace=meta.namespace,
            name=meta.name,
            spec=policy.spec,
            generation=meta.generation,
            creation_timestamp=meta.creation_timestamp,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayPod:
    """A gateway pod: where it runs and its labels (what selectors match)."""

    namespace: str
    name: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> PodKey:
        """(namespace, name)."""
        return (self.namespace, self.name)


@dataclasses.dataclass(frozen=True, slots=True)
class SourceRef:
    """A policy that contributed to an effective config, and at which level."""

    namespace: str
    name: str
    generation: int
    level: Level

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class Conflict:
    """Two policies at the same level for a pod: the older ``winner`` applies, ``loser`` not."""

    level: Level
    namespace: str
    winner: str
    loser: str

    def message(self) -> str:
        """A sentence for status conditions and ``explain``."""
        return (
            f"{self.loser} conflicts with {self.winner} at {self.level} level in "
            f"namespace {self.namespace}; the older {self.winner} wins"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Clamp:
    """A namespace override lowered (``clamped``) or dropped (``ignored``) by a gateway's limits."""

    policy: str
    namespace: str
    path: str
    action: Literal["clamped", "ignored"]
    requested: str = ""
    applied: str = ""


class LazyProvenance(Mapping[str, str]):
    """A provenance mapping built on first use: most configs are pushed, not explained."""

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[str, str]]) -> None:
        self._build: Callable[[], dict[str, str]] | None = build
        self._data: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._data is None:
            assert self._build is not None
            self._data, self._build = self._build(), None
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"LazyProvenance({self._mapping()!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """What one gateway pod should run, and why."""

    config: model.TracingConfig
    """The merged config; may carry resolved secrets, so render it with ``redaction.redact``."""
    version: str
    """Content hash of ``config``."""
    sources: tuple[SourceRef, ...]
    """Policies that contributed, lowest precedence first."""
    provenance: Mapping[str, str]
    """For each field path of ``config``: ``namespace/name`` of the policy that set it,
    or :data:`gatetrace.policy.merge.DEFAULT_SOURCE`."""
    conflicts: tuple[Conflict, ...] = ()
    """Policies that lost to an older one at the same level."""
    clamps: tuple[Clamp, ...] = ()
    """Namespace overrides clamped or ignored by this gateway's limits."""
    revision: int = 0
    """Assigned by the operator: increases with every config it pushes."""


def wire_config(config: model.TracingConfig) -> dict[str, Any]:
    """The canonical JSON-ready dict of a config (camelCase, nulls left out)."""
    return config.model_dump(mode="json", exclude_none=True)


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def settings_digest(config: model.TracingConfig) -> str:
    """Digest of everything but the namespace overrides."""
    return digest(
        config.model_dump(mode="json", exclude_none=True, exclude={"namespace_overrides"})
    )


def override_digest(override: model.NamespaceOverride) -> str:
    """Digest of one namespace override."""
    return digest(override.model_dump(mode="json", exclude_none=True))


def combine_version(settings: str, overrides: Iterable[tuple[str, str]]) -> str:
    """The version from the digests of the parts; ``overrides`` as (namespace, digest)."""
    h = hashlib.sha256(b"gatetrace-config/1\n" + settings.encode())
    for namespace, part in sorted(overrides):
        h.update(f"\n{namespace}={part}".encode())
    return "sha256:" + h.hexdigest()[:32]


def config_version(config: model.TracingConfig) -> str:
    """Content hash of a config: changes iff the config's content changes."""
    parts = ((ns, override_digest(o)) for ns, o in config.namespace_overrides.items())
    return combine_version(settings_digest(config), parts)


def sampling_for_namespace(config: model.TracingConfig, namespace: str) -> sampling.Sampling:
    """Sampling for traffic routed to services of ``namespace``: the override's fields win."""
    override = config.namespace_overrides.get(namespace)
    if override is None:
        return config.sampling
    update = {
        name: getattr(override.sampling, name)
        for name in type(override.sampling).model_fields
        if getattr(override.sampling, name) is not None
    }
    return config.sampling.model_copy(update=update)
