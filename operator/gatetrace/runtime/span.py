"""Spans: the unit of work a trace is made of.

A :class:`Span` is mutable while it runs and frozen by :meth:`Span.finish`.
Spans that are not recording (sampled out, no priority upgrade possible) keep
only their :class:`~gatetrace.runtime.spancontext.SpanContext` (so the trace
still propagates) and make every setter a cheap no-op.

Error/latency priority: a span whose sampler answered ``RECORD_ONLY``
records everything but is not exported yet. The spans of that local trace
share a :class:`PendingGroup`; when the group's local root finishes, the
whole group is exported if any of its spans was :meth:`Span.upgrade`-d
within the budget, and discarded otherwise.
"""

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import spancontext as _sc

__all__ = [
    "UNSET_STATUS",
    "FinishCounts",
    "LogRecord",
    "PendingGroup",
    "Reference",
    "ReferenceType",
    "Resource",
    "Span",
    "SpanKind",
    "SpanLimits",
    "Status",
    "StatusCode",
    "TagBlock",
    "TagValue",
    "UpgradeBudget",
    "exception_event",
]

TagValue = str | bool | int | float
"""The tag (attribute) value types every reporter can encode."""


class SpanKind(enum.Enum):
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class ReferenceType(enum.Enum):
    CHILD_OF = "child_of"
    FOLLOWS_FROM = "follows_from"


class Reference(NamedTuple):
    """A causal link to another span (OpenTracing/Jaeger references)."""

    type: ReferenceType
    context: _sc.SpanContext


class StatusCode(enum.Enum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


class Status(NamedTuple):
    code: StatusCode = StatusCode.UNSET
    description: str = ""


class LogRecord(NamedTuple):
    """A timestamped event on a span (Jaeger log, Zipkin annotation, OTLP event)."""

    timestamp_ns: int
    fields: Mapping[str, TagValue]


def exception_event(exc: BaseException) -> dict[str, TagValue]:
    """The fields of an OpenTelemetry ``exception`` event for ``exc`` (a span log whose
    ``event`` field is the event name): ``exception.type`` is the fully qualified class
    name (builtins unqualified), ``exception.message`` its text."""
    kind = type(exc)
    module = kind.__module__
    name = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
    return {"event": "exception", "exception.type": name, "exception.message": str(exc)}


class TagBlock:
    """Tags that many spans share, in order: what a gateway route records on every request
    to it (method, route, host...). Immutable; compared and hashed by identity.

    A span given one with :meth:`Span.share` copies its tags in one C call and remembers
    it (:attr:`Span.shared`) while its first tags are still exactly the block's, so an
    encoder writes them as one fragment it cached for the block instead of tag by tag.
    """

    __slots__ = ("_followed", "items", "keys", "longest", "size", "tags")

    def __init__(self, items: Sequence[tuple[str, TagValue]]) -> None:
        tags: dict[str, TagValue] = {}
        for key, value in items:
            if type(key) is not str or type(value) not in _BLOCK_VALUE_TYPES:
                raise TypeError(
                    f"TagBlock: tag {key!r}: a str key and a str, bool, int or float value "
                    f"are required, not {type(key).__name__} and {type(value).__name__}"
                )
            tags[key] = value  # a repeated key: the later value, as set_tag would
        self.tags: Mapping[str, TagValue] = tags
        """The tags, in order (never mutated: spans copy it)."""
        self.items = tuple(tags.items())
        self.keys = frozenset(tags)
        self.longest = max((len(v) for v in tags.values() if type(v) is str), default=0)
        """The longest str value: a span whose value limit is lower does not share."""
        self.size = len(self.items)
        self._followed: dict[TagBlock, TagBlock | None] = {}

    def __len__(self) -> int:
        return self.size

    def followed_by(self, other: "TagBlock") -> "TagBlock | None":
        """This block's tags, then ``other``'s, as one block (the same one each time), or
        None when they have a key in common (the span sets them one by one then)."""
        followed = self._followed
        try:
            return followed[other]
        except KeyError:
            pass
        joined = (
            None if not self.keys.isdisjoint(other.keys) else TagBlock(self.items + other.items)
        )
        if len(followed) >= _FOLLOWED_CACHED:
            followed.clear()
        followed[other] = joined
        return joined

    def __repr__(self) -> str:
        return f"TagBlock({list(self.items)!r})"


_BLOCK_VALUE_TYPES = frozenset({str, bool, int, float})
_FOLLOWED_CACHED = 512  # above the gateway's 256 route blocks a sampler block is joined with
_UNJOINED: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Resource:
    """Who emits the spans: the service name and process-wide tags."""

    service_name: str
    tags: tuple[tuple[str, TagValue], ...] = ()
    """Resource attributes (``k8s.pod.name``, ``service.instance.id``, ``host.name``...),
    in order (see :mod:`~gatetrace.runtime.process_resource`)."""
    schema_url: str = ""
    """The semantic conventions version of the attribute names (OTLP ``schema_url``)."""


@dataclass(frozen=True, slots=True)
class SpanLimits:
    """Bounds on what one span may hold; every cut is counted by the tracer's metrics."""

    max_tags: int = 128
    """Tags beyond this count are dropped (OpenTelemetry's attribute count limit)."""
    max_tag_value_length: int = 4096
    """String tag values and log field values longer than this are truncated."""
    max_logs: int = 128
    """Log records beyond this count are dropped."""
    max_log_fields: int = 32
    """Fields of one log record beyond this count are dropped."""
    max_pending_spans: int = 512
    """Spans buffered per local trace while its priority decision is pending."""


class LimitCounter(Protocol):
    """Where a span reports what its limits cut (``tags``, ``value``, ``logs``, ``log_fields``)."""

    def limit_hit(self, what: str, amount: int = 1) -> None: ...


class UpgradeBudget(Protocol):
    """Grants priority upgrades (errors, slow requests) within a per-second budget."""

    def try_acquire(self, reason: str = "") -> bool:
        """Draw one upgrade for ``reason`` (``error``, ``slow``); False when none is left."""
        ...


class PendingGroup:
    """The spans of one local trace while its sampling decision is still open."""

    __slots__ = ("budget", "decided", "on_export", "sampled", "spans", "upgrade_reason")

    def __init__(self, budget: UpgradeBudget | None, on_export: Callable[["Span"], None]) -> None:
        self.budget = budget
        self.on_export = on_export
        self.spans: list[Span] = []
        self.sampled = False
        self.decided = False
        self.upgrade_reason = ""


class FinishCounts:
    """The ``gatetrace_spans_finished`` series by outcome as tallies: a finishing span
    counts with a bare increment, no call and no label lookup (one per tracer's metrics)."""

    __slots__ = ("discarded", "exported", "not_sampled", "pending")

    def __init__(self, counter: _metrics.Counter) -> None:
        self.exported = counter.tally(("exported",))
        self.not_sampled = counter.tally(("not_sampled",))
        self.pending = counter.tally(("pending",))
        self.discarded = counter.tally(("discarded",))


UNSET_STATUS = Status()
"""Every span's status until :meth:`Span.set_status` (a tuple: one shared instance, so an
encoder tells an unset status by identity)."""


class _NoCounts:
    """Where a restored span would report limits it hits: it is finished, it hits none."""

    def limit_hit(self, what: str, amount: int = 1) -> None:
        return None


_NO_COUNTS: LimitCounter = _NoCounts()
_UNCOUNTED = FinishCounts(
    _metrics.Counter("uncounted", "finishes of spans built without counts", ["outcome"])
)
_RESTORED_LIMITS = SpanLimits()


class Span:
    """A unit of work. Create spans with :meth:`gatetrace.runtime.tracer.Tracer.start_span`."""

    __slots__ = (
        "_end_hook",
        "_finished_counter",
        "_group",
        "_limits",
        "_metrics",
        "_mono_start",
        "context",
        "end_ns",
        "is_local_root",
        "kind",
        "logs",
        "name",
        "parent_id",
        "recording",
        "references",
        "resource",
        "sampled",
        "shared",
        "start_ns",
        "status",
        "tags",
    )

    def __init__(
        self,
        context: _sc.SpanContext,
        name: str,
        kind: SpanKind,
        parent_id: int | None,
        resource: Resource,
        references: Sequence[Reference],
        sampled: bool,
        recording: bool,
        start_ns: int,
        limits: SpanLimits,
        metrics: LimitCounter,
        end_hook: Callable[["Span"], None] | None,
        group: PendingGroup | None = None,
        is_local_root: bool = False,
        finished_counter: FinishCounts | None = None,
    ) -> None:
        self.context = context
        self.name = name
        self.kind = kind
        self.parent_id = parent_id
        self.resource = resource
        self.references: tuple[Reference, ...] = tuple(references)
        self.sampled = sampled
        self.recording = recording
        self.start_ns = start_ns
        self._mono_start = time.perf_counter_ns()
        self.end_ns: int | None = None
        self.tags: dict[str, TagValue] = {}
        self.shared: TagBlock | None = None
        """A block whose tags :attr:`tags` begins with, unchanged (see :meth:`share`);
        cleared when one of them is set again."""
        self.logs: list[LogRecord] = []
        self.status = UNSET_STATUS
        self._limits = limits
        self._metrics = metrics
        self._end_hook = end_hook
        self._group = group
        self.is_local_root = is_local_root
        self._finished_counter = finished_counter
        """Counts finishes by outcome: ``exported``, ``not_sampled``, ``pending``
        (buffered until its local root decides), ``discarded`` (priority not granted)."""

    @classmethod
    def restored(
        cls,
        context: _sc.SpanContext,
        name: str,
        kind: SpanKind,
        parent_id: int | None,
        resource: Resource,
        start_ns: int,
        end_ns: int,
        tags: dict[str, TagValue],
        logs: list[LogRecord],
        status: Status,
        references: tuple[Reference, ...],
        is_local_root: bool,
    ) -> "Span":
        """A finished, non-recording span rebuilt from its fields (a span a gateway worker
        shipped to its supervisor's store): no limits to count, no processor to call. The
        cheap way (no keyword parsing, no clock read): the store takes thousands a second."""
        span = object.__new__(cls)
        span.context = context
        span.name = name
        span.kind = kind
        span.parent_id = parent_id
        span.resource = resource
        span.references = references
        span.sampled = bool(context.sampled)
        span.recording = False
        span.start_ns = start_ns
        span._mono_start = 0
        span.end_ns = end_ns
        span.tags = tags
        span.shared = None
        span.logs = logs
        span.status = status
        span._limits = _RESTORED_LIMITS
        span._metrics = _NO_COUNTS
        span._end_hook = None
        span._group = None
        span.is_local_root = is_local_root
        span._finished_counter = None
        return span

    # -- reading ---------------------------------------------------------

    @property
    def trace_id(self) -> int:
        return self.context.trace_id

    @property
    def span_id(self) -> int:
        return self.context.span_id

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ns is None else self.end_ns - self.start_ns

    @property
    def is_finished(self) -> bool:
        return self.end_ns is not None

    @property
    def is_error(self) -> bool:
        return self.status.code is StatusCode.ERROR

    @property
    def pending(self) -> bool:
        """Recording, not sampled yet: a priority upgrade may still export it."""
        return self._group is not None and not self._group.sampled

    def __repr__(self) -> str:
        return (
            f"<Span {self.name!r} trace={self.context.trace_id_hex} "
            f"span={self.context.span_id_hex} sampled={self.sampled}>"
        )

    # -- writing ---------------------------------------------------------

    def set_tag(self, key: str, value: TagValue) -> None:
        """Set one tag; no-op when not recording or finished; limits are counted."""
        if not self.recording or self.end_ns is not None:
            return
        tags = self.tags
        if key not in tags:
            if len(tags) >= self._limits.max_tags:
                self._metrics.limit_hit("tags")
                return
        elif self.shared is not None and key in self.shared.keys:
            self.shared = None  # the block's value is replaced: its tags are not shared now
        if type(value) is str and len(value) > self._limits.max_tag_value_length:
            value = value[: self._limits.max_tag_value_length]
            self._metrics.limit_hit("value")
        tags[key] = value

    def set_tags(self, tags: Mapping[str, TagValue]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def adopt_tags(self, tags: dict[str, TagValue], *, checked: bool = False) -> None:
        """Set many tags at once, taking ``tags`` over (the caller must not touch it after).

        Same rules as :meth:`set_tag` (long string values cut, the count limit), for
        instrumentation that builds a request's tags in a local dict on its hot path:
        one length check per value and one ``dict.update`` instead of a call per tag.
        ``checked``: the caller knows no str value is longer than the limit
        (``SpanLimits.max_tag_value_length``), so the values are not looked at.
        """
        if not self.recording or self.end_ns is not None:
            return
        limits = self._limits
        if not checked:
            cap = limits.max_tag_value_length
            for key, value in tags.items():
                if type(value) is str and len(value) > cap:
                    tags[key] = value[:cap]
                    self._metrics.limit_hit("value")
        mine = self.tags
        if len(mine) + len(tags) <= limits.max_tags:
            if mine:
                shared = self.shared
                if shared is not None and not shared.keys.isdisjoint(tags):
                    self.shared = None
                mine.update(tags)
            else:
                self.tags = tags
            return
        for key, value in tags.items():  # near the count limit: one by one, counted
            self.set_tag(key, value)

    def share(self, block: TagBlock) -> None:
        """Set the block's tags (as :meth:`set_tags` would) and, when they fit the limits
        and no tag of the span has one of their keys, share them: they go first in
        :attr:`tags`, ahead of the ones the span had, and :attr:`shared` is the block. A
        span whose only tags are a block it shares shares the two blocks as one
        (:meth:`TagBlock.followed_by`)."""
        if not self.recording or self.end_ns is not None:
            return
        mine = self.tags
        limits = self._limits
        if (
            block.size
            and block.longest <= limits.max_tag_value_length
            and len(mine) + block.size <= limits.max_tags
        ):
            shared = self.shared
            if shared is None:
                if not mine or block.keys.isdisjoint(mine):
                    tags = dict(block.tags)  # a C copy
                    if mine:
                        tags.update(mine)
                    self.tags = tags
                    self.shared = block
                    return
            elif len(mine) == shared.size:  # nothing but the first block yet
                joined = shared._followed.get(block, _UNJOINED)
                if joined is _UNJOINED:
                    joined = shared.followed_by(block)
                if joined is not None:
                    self.tags = dict(joined.tags)
                    self.shared = joined
                    return
        self.adopt_tags(dict(block.tags))  # counted and cut as any other tags

    def set_operation_name(self, name: str) -> None:
        if self.end_ns is None:
            self.name = name

    def log(self, fields: Mapping[str, TagValue], timestamp_ns: int | None = None) -> None:
        """Record a timestamped event (``{"event": "retry", "attempt": 2}``)."""
        if not self.recording or self.end_ns is not None:
            return
        limits = self._limits
        if len(self.logs) >= limits.max_logs:
            self._metrics.limit_hit("logs")
            return
        kept: dict[str, TagValue] = {}
        for key, value in fields.items():
            if len(kept) >= limits.max_log_fields:
                self._metrics.limit_hit("log_fields")
                break
            if type(value) is str and len(value) > limits.max_tag_value_length:
                value = value[: limits.max_tag_value_length]
                self._metrics.limit_hit("value")
            kept[key] = value
        self.logs.append(LogRecord(timestamp_ns or time.time_ns(), kept))

    def set_status(self, code: StatusCode, description: str = "") -> None:
        """The span's status. An error is a status, not a tag: each reporter writes it
        the way its backend expects (OTLP ``status``; Jaeger ``error=true`` and
        ``otel.status_code``; Zipkin ``error`` and ``otel.status_code``)."""
        if self.end_ns is None:
            self.status = Status(code, description)

    def record_exception(self, exc: BaseException) -> None:
        """Mark the span failed and add an OpenTelemetry ``exception`` event
        (``exception.type``, ``exception.message``; ``error.type`` on the span)."""
        event = exception_event(exc)
        self.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
        self.set_tag("error.type", event["exception.type"])
        self.log(event)

    def set_baggage_item(self, key: str, value: str) -> None:
        """Add baggage to this span's context; children started afterwards inherit it."""
        self.context = self.context._replace(baggage=self.context.baggage.with_entry(key, value))

    def upgrade(self, reason: str) -> bool:
        """Ask that this pending trace be exported (error/latency priority).

        Returns True when the trace is (now or already) sampled. The budget is
        charged once per trace.
        """
        group = self._group
        if group is None:
            return self.sampled
        if group.sampled:
            self.sampled = True
            return True
        if group.decided or (group.budget is not None and not group.budget.try_acquire(reason)):
            return False
        group.sampled = True
        group.upgrade_reason = reason
        self.sampled = True
        self.set_tag("sampling.priority.reason", reason)
        return True

    def finish(self, end_ns: int | None = None) -> None:
        """End the span (idempotent) and hand it to the tracer's finished-span hook."""
        if self.end_ns is not None:
            return
        if end_ns is None:
            end_ns = self.start_ns + max(time.perf_counter_ns() - self._mono_start, 0)
        self.end_ns = end_ns
        counts = self._finished_counter
        group = self._group
        if group is not None:
            tally = self._finish_pending(group, counts)
        elif self.sampled:
            if self._end_hook is not None:
                self._end_hook(self)
            tally = counts.exported if counts is not None else None
        else:
            tally = counts.not_sampled if counts is not None else None
        if tally is not None:
            tally.n += 1

    def _finish_pending(
        self, group: PendingGroup, counts: FinishCounts | None
    ) -> _metrics.Tally | None:
        """The outcome's tally (a throwaway one for a span built without counts)."""
        if counts is None:
            counts = _UNCOUNTED
        if group.decided:
            if group.sampled:
                self.sampled = True
                group.on_export(self)
                return counts.exported
            return counts.discarded
        if not self.is_local_root:
            if len(group.spans) < self._limits.max_pending_spans:
                group.spans.append(self)
                return counts.pending
            self._metrics.limit_hit("pending_spans")
            return counts.discarded
        group.decided = True
        buffered, group.spans = group.spans, []
        if not group.sampled:
            return counts.discarded
        # The local root carries the reason even when the upgrade came from a
        # span that had already finished (and so could not take the tag).
        self.tags.setdefault("sampling.priority.reason", group.upgrade_reason)
        for span in buffered:
            span.sampled = True
            group.on_export(span)
        self.sampled = True
        group.on_export(self)
        return counts.exported
