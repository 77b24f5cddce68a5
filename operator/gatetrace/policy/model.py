"""The TracingPolicy API (``gatetrace.dev/v1alpha1``) and the effective config body.

:class:`TracingPolicySpec` is what users write; :class:`TracingConfig` is what
a gateway runs: the same settings without ``selector`` plus per-namespace
sampling overrides.  Every field has a docstring: it becomes the CRD
description that ``kubectl explain`` shows.  Sampler and reporter models live
in :mod:`gatetrace.policy.sampling` and :mod:`gatetrace.policy.reporters`.
"""

import datetime
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

import pydantic

from gatetrace.policy import messages as _messages
from gatetrace.policy import reporters as reporters_mod
from gatetrace.policy import retro as retro_mod
from gatetrace.policy import sampling as sampling_mod
from gatetrace.policy import services as services_mod
from gatetrace.policy import status as status_mod
from gatetrace.policy import wire

GROUP: Final = "gatetrace.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "gatetrace.dev/v1alpha1"
KIND: Final = "TracingPolicy"

PropagationFormat = Literal["tracecontext", "baggage", "b3", "b3multi", "jaeger", "xtrace"]
PROPAGATION_FORMATS: tuple[str, ...] = typing.get_args(PropagationFormat)
"""The formats a policy may name: the runtime's registry
(``gatetrace.runtime.propagation.composite.FORMATS``) has exactly these (a test holds it)."""
"""A wire format for trace context; see DESIGN.md."""

_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelKey = Annotated[str, pydantic.Field(min_length=1, max_length=317, pattern=_LABEL_KEY)]
LabelValue = Annotated[str, pydantic.Field(max_length=63, pattern=_LABEL_VALUE)]


def _duplicates(values: list[Any], what: str) -> list[str]:
    seen: set[Any] = set()
    problems: list[str] = []
    for value in values:
        if value in seen:
            problems.append(f"{what} lists {_messages.echo(value)} twice")
        seen.add(value)
    return problems


def _refuse(problems: list[str]) -> None:
    """One error listing every problem of a block, so a user fixes them all at once."""
    if problems:
        raise ValueError("; ".join(problems))


def _default_formats() -> list[PropagationFormat]:
    return ["tracecontext", "baggage"]


class Propagation(wire.WireModel):
    """Which trace-context formats are read from requests and written to upstreams."""

    extract: Annotated[
        list[PropagationFormat],
        pydantic.Field(max_length=len(PROPAGATION_FORMATS), json_schema_extra=wire.LIST_SET),
    ] = pydantic.Field(default_factory=_default_formats)
    """Formats read from incoming requests, tried in order. Default [tracecontext, baggage]."""
    inject: Annotated[
        list[PropagationFormat],
        pydantic.Field(
            min_length=1, max_length=len(PROPAGATION_FORMATS), json_schema_extra=wire.LIST_SET
        ),
    ] = pydantic.Field(default_factory=_default_formats)
    """Formats written to upstream requests. Default [tracecontext, baggage]."""

    @pydantic.model_validator(mode="after")
    def _no_duplicates(self) -> Self:
        _refuse(_duplicates(self.extract, "extract") + _duplicates(self.inject, "inject"))
        return self


BaggageKey = Annotated[
    str, pydantic.Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
]


class Baggage(wire.WireModel):
    """Which baggage entries pass through the gateway, and limits (W3C baggage)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "!has(self.allow) || !has(self.deny) || !self.allow.exists(k, k in self.deny)",
                "a key may not be both allowed and denied",
            ),
            (
                "!has(self.tagKeys) || !has(self.deny) || !self.tagKeys.exists(k, k in self.deny)",
                "tagKeys may not name denied keys",
            ),
            (
                "!has(self.tagKeys) || !has(self.allow) || '*' in self.allow"
                " || self.tagKeys.all(k, k in self.allow)",
                "tagKeys may only name allowed keys",
            ),
        )
    )

    allow: Annotated[
        list[BaggageKey], pydantic.Field(max_length=256, json_schema_extra=wire.LIST_SET)
    ] = pydantic.Field(default_factory=lambda: ["*"])
    """Keys forwarded; "*" allows every key not denied. Default ["*"]."""
    deny: Annotated[
        list[BaggageKey], pydantic.Field(max_length=256, json_schema_extra=wire.LIST_SET)
    ] = pydantic.Field(default_factory=list)
    """Keys dropped from incoming and outgoing baggage."""
    max_entries: Annotated[int, pydantic.Field(ge=1, le=1024)] = 64
    """At most this many entries are kept. Default 64 (W3C)."""
    max_bytes: Annotated[int, pydantic.Field(ge=1, le=65536)] = 8192
    """Baggage headers longer than this are dropped. Default 8192 (W3C)."""
    tag_keys: Annotated[
        list[BaggageKey], pydantic.Field(max_length=64, json_schema_extra=wire.LIST_SET)
    ] = pydantic.Field(default_factory=list)
    """Baggage keys copied into span tags."""

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = [
            *_duplicates(self.allow, "allow"),
            *_duplicates(self.deny, "deny"),
            *_duplicates(self.tag_keys, "tagKeys"),
        ]
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            problems.append(f"keys both allowed and denied: {both}")
        denied = sorted(set(self.tag_keys) & set(self.deny))
        if denied:
            problems.append(f"tagKeys names denied keys: {denied}")
        if "*" not in self.allow:
            missing = sorted(set(self.tag_keys) - set(self.allow))
            if missing:
                problems.append(f"tagKeys names keys that are not allowed: {missing}")
        _refuse(problems)
        return self


class HeaderTag(wire.WireModel):
    """Copy a request header into a span tag."""

    header: wire.HeaderName
    """Request header name (case-insensitive)."""
    tag: wire.ShortText
    """Span tag the header value is stored under."""


class Batching(wire.WireModel):
    """The reporters' batching engine: bounded queue, batch size, flush interval, timeout."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "!has(self.maxQueueSize) || !has(self.maxBatchSize)"
                " || self.maxBatchSize <= self.maxQueueSize",
                "maxBatchSize must not be above maxQueueSize",
            )
        )
    )

    max_queue_size: Annotated[int, pydantic.Field(ge=1, le=1_000_000)] = 2048
    """Finished spans waiting for export; more are dropped and counted. Default 2048."""
    max_batch_size: Annotated[int, pydantic.Field(ge=1, le=100_000)] = 512
    """Spans per export call, at most maxQueueSize. Default 512."""
    flush_interval_ms: Annotated[int, pydantic.Field(ge=1, le=600_000)] = 1000
    """Export at least this often (milliseconds). Default 1000."""
    export_timeout_ms: Annotated[int, pydantic.Field(ge=1, le=600_000)] = 5000
    """Give up on one export call after this many milliseconds. Default 5000."""

    @pydantic.model_validator(mode="after")
    def _batch_fits_queue(self) -> Self:
        # A policy setting only one of the two is checked once merged (TracingConfig).
        both = {"max_queue_size", "max_batch_size"} <= self.model_fields_set
        if both and self.max_batch_size > self.max_queue_size:
            raise ValueError(
                f"maxBatchSize {self.max_batch_size} is above maxQueueSize {self.max_queue_size}"
            )
        return self


class LabelSelectorRequirement(wire.WireModel):
    """A label selector requirement (as in Kubernetes)."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
                " : (!has(self.values) || size(self.values) == 0)",
                "In and NotIn need values; Exists and DoesNotExist take none",
            )
        )
    )

    key: LabelKey
    """The label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""
    values: Annotated[list[LabelValue], pydantic.Field(max_length=64)] | None = None
    """Values for In and NotIn; must be empty for Exists and DoesNotExist."""

    @pydantic.model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        inside = present and labels[self.key] in (self.values or ())
        return inside if self.operator == "In" else not inside


class LabelSelector(wire.WireModel):
    """Selects gateway pods in the policy's namespace by their labels."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.cel(
            (
                "(has(self.matchLabels) && size(self.matchLabels) > 0)"
                " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
                "selector must set matchLabels or matchExpressions"
                " (omit selector for a namespace-wide default)",
            )
        )
    )

    match_labels: Annotated[dict[LabelKey, LabelValue], pydantic.Field(max_length=64)] | None = None
    """Labels the pod must carry with exactly these values."""
    match_expressions: (
        Annotated[list[LabelSelectorRequirement], pydantic.Field(max_length=64)] | None
    ) = None
    """Requirements the pod's labels must all satisfy."""

    @pydantic.model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.match_labels and not self.match_expressions:
            raise ValueError(
                "selector must set matchLabels or matchExpressions "
                "(omit selector for a namespace-wide default)"
            )
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod with ``labels`` is selected."""
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self.match_expressions or ())


def _or_default(var: str, field: str, default: str) -> str:
    return f"(has({var}.{field}) ? {var}.{field} : {default})"


_EMPTY = "''"
_SAME_DESTINATION = " && ".join(
    [
        "b.type == a.type",
        _or_default("b", "endpoint", _EMPTY) + " == " + _or_default("a", "endpoint", _EMPTY),
        _or_default("b", "host", _EMPTY) + " == " + _or_default("a", "host", _EMPTY),
        _or_default("b", "port", "6831") + " == " + _or_default("a", "port", "6831"),
    ]
)
_DISTINCT_REPORTERS = (
    f"self.all(a, self.exists_one(b, {_SAME_DESTINATION}))",
    "two reporters send to the same destination",
)


class TracingSettings(wire.WireModel):
    """Settings shared by a policy spec and the effective config."""

    sampling: sampling_mod.Sampling = pydantic.Field(default_factory=sampling_mod.Sampling)
    """How traces are sampled."""
    propagation: Propagation = pydantic.Field(default_factory=Propagation)
    """Trace-context formats read and written."""
    baggage: Baggage = pydantic.Field(default_factory=Baggage)
    """Baggage filtering and limits."""
    tags: Annotated[dict[wire.ShortText, wire.LongText], pydantic.Field(max_length=64)] = (
        pydantic.Field(default_factory=dict)
    )
    """Tags added to every span of the gateway (merged key by key)."""
    header_tags: Annotated[
        list[HeaderTag],
        pydantic.Field(
            max_length=64,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["header"],
            },
        ),
    ] = pydantic.Field(default_factory=list)
    """Request headers copied into span tags."""
    reporters: Annotated[
        list[reporters_mod.Reporter],
        pydantic.Field(max_length=16, json_schema_extra=wire.cel(_DISTINCT_REPORTERS)),
    ] = pydantic.Field(default_factory=reporters_mod.default_reporters)
    """Where finished spans go; all reporters receive every sampled span. Default [memory]."""
    batching: Batching = pydantic.Field(default_factory=Batching)
    """Batching shared by the reporters."""
    retro: retro_mod.Retro = pydantic.Field(default_factory=retro_mod.Retro)
    """Retroactive collection of pending traces from services running the kit."""

    @pydantic.model_validator(mode="after")
    def _no_duplicates(self) -> Self:
        headers = [h.header for h in self.header_tags]
        reporters = [reporters_mod.reporter_identity(r) for r in self.reporters]
        _refuse(_duplicates(headers, "headerTags") + _duplicates(reporters, "reporters"))
        return self


class TracingPolicySpec(TracingSettings):
    """Desired tracing for the gateways the policy applies to.

    Without selector, the policy is the default for its namespace (the cluster
    default in the operator's root namespace) and may override sampling of
    traffic routed to its namespace. With a selector, it applies to the
    selected gateway pods of its namespace. Fields left out are inherited.
    """

    selector: LabelSelector | None = None
    """Gateway pods of this namespace the policy applies to; omit for a namespace default."""
    services: services_mod.SERVICES_FIELD = pydantic.Field(default_factory=list)
    """Sampling strategies for the services behind the gateway, served to their SDKs by the
    operator's Jaeger remote sampling endpoint (``/sampling?service=``); not part of any
    gateway's config. Any policy naming a service overrides the cluster default's entry;
    between two such policies the older wins."""


class NamespaceOverride(wire.WireModel):
    """Settings for traffic routed to services of one namespace."""

    sampling: sampling_mod.SamplingOverride
    """Sampling fields that replace the gateway's for that traffic (already clamped)."""


class TracingConfig(TracingSettings):
    """The effective config a gateway runs: merged settings plus namespace overrides."""

    namespace_overrides: Annotated[
        dict[wire.DnsLabel, NamespaceOverride], pydantic.Field(max_length=10_000)
    ] = pydantic.Field(default_factory=dict)
    """Per-namespace sampling for traffic routed to services of that namespace."""

    @pydantic.model_validator(mode="after")
    def _complete(self) -> Self:
        if self.batching.max_batch_size > self.batching.max_queue_size:
            raise ValueError(
                f"batching.maxBatchSize {self.batching.max_batch_size} is above "
                f"batching.maxQueueSize {self.batching.max_queue_size}"
            )
        return self


class ObjectMeta(wire.WireModel):
    """The subset of Kubernetes object metadata the policy uses; the rest is kept."""

    model_config = pydantic.ConfigDict(extra="allow", strict=False)

    name: Annotated[
        str,
        pydantic.Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
    ]
    """Policy name."""
    namespace: wire.DnsLabel = "default"
    """Policy namespace."""
    generation: Annotated[int, pydantic.Field(ge=0)] = 0
    """Spec generation (set by the API server)."""
    creation_timestamp: datetime.datetime | None = None
    """Creation time; the older policy wins at the same precedence level."""
    labels: dict[str, str] | None = None
    """Labels."""
    annotations: dict[str, str] | None = None
    """Annotations."""


class TracingPolicy(wire.WireModel):
    """A TracingPolicy object as stored in Kubernetes or written in a YAML file."""

    api_version: Literal["gatetrace.dev/v1alpha1"] = API_VERSION
    """gatetrace.dev/v1alpha1."""
    kind: Literal["TracingPolicy"] = KIND
    """TracingPolicy."""
    metadata: ObjectMeta
    """Object metadata."""
    spec: TracingPolicySpec = pydantic.Field(default_factory=TracingPolicySpec)
    """Desired tracing. Without selector: the namespace's default (the cluster default in
    the operator's root namespace), which may also override sampling of traffic routed to
    the namespace; with a selector: the selected gateway pods. Cluster < namespace <
    workload; fields merge deeply, lists replace, unset fields are inherited."""
    status: status_mod.TracingPolicyStatus | None = None
    """Observed state, written by the operator."""
