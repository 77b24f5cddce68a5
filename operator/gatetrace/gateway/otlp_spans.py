"""Decoded OTLP spans (:mod:`.otlp_data`) checked and built into runtime spans for the store.

Mapping (the reverse of :mod:`gatetrace.runtime.reporting.otlp_encoding`):

* the resource's ``service.name`` (a string; ``unknown_service`` when absent) is the
  span's process, its other attributes the process tags; a service name longer than
  :data:`MAX_SERVICE_NAME` characters fails the whole request (:class:`InvalidRequestError`);
* ids must be 16 (trace) and 8 (span) non-zero bytes, a parent empty or 8 bytes (all
  zero: no parent), the start time set and the end not before it; a span breaking one
  of these is rejected (counted in the answer's ``partial_success``), the others stored;
* ``kind`` 1..5 as the runtime's kinds (unspecified or unknown: internal); ``status`` as
  the runtime's status; ``trace_state`` parsed as W3C ``tracestate`` (dropped when
  malformed); the ``sampled`` and ``random`` bits of ``flags``;
* events as logs (``event`` = the event's name, plus its attributes); links as
  references, ``follows_from`` unless the link's ``opentracing.ref_type`` says
  ``child_of``.

The gateway's own span limits (:class:`~gatetrace.runtime.span.SpanLimits`) bound what a
span keeps: attributes, events, event attributes and links beyond the counts are dropped,
strings beyond the length (names, keys, values) cut; each cut is counted by kind.
"""

import sys
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field

from gatetrace.gateway import otlp_data as _data
from gatetrace.gateway import stepwise
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import tracestate as _tracestate

__all__ = [
    "DEFAULT_SERVICE",
    "MAX_SERVICE_NAME",
    "Built",
    "InvalidRequestError",
    "SpanBuilder",
    "place",
]

MAX_SERVICE_NAME = 256
"""Longest ``service.name`` accepted (the gateway's own ``service`` has the same bound)."""
DEFAULT_SERVICE = "unknown_service"
"""The process of spans whose resource names no service (OpenTelemetry's default)."""
_KINDS = {
    1: _span.SpanKind.INTERNAL,
    2: _span.SpanKind.SERVER,
    3: _span.SpanKind.CLIENT,
    4: _span.SpanKind.PRODUCER,
    5: _span.SpanKind.CONSUMER,
}
_STATUS = {1: _span.StatusCode.OK, 2: _span.StatusCode.ERROR}
_ZERO_SPAN_ID = bytes(8)
_RESOURCE_CACHE = 1024
_RESOURCE_BYTES = 200
"""A resource's fixed cost beyond its strings (the object and its tag tuples)."""


class InvalidRequestError(ValueError):
    """Data in the request that fails it as a whole (a 400)."""


class _Uncounted:
    """The span limits' counter for built spans: the builder counts its own cuts."""

    def limit_hit(self, what: str, amount: int = 1) -> None:
        pass


_UNCOUNTED = _Uncounted()
_NO_LIMITS = _span.SpanLimits()


def place(where: tuple[int, int, int]) -> str:
    """A span's path in the request (``resourceSpans[0].scopeSpans[1].spans[2]``)."""
    r, s, i = where
    return f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"


@dataclass(slots=True)
class Built:
    """One request's spans, ready for the store, and what was refused or cut."""

    groups: list[tuple[_span.Resource, list[_span.Span], int]] = field(default_factory=list)
    """(resource, its spans, the resource's bytes to count with each span)."""
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    """The first few rejections, each naming the span and the field."""
    cut: dict[str, int] = field(default_factory=dict)
    """Limits hit, by kind (``attributes``, ``value_length``, ``events``...)."""

    @property
    def accepted(self) -> int:
        return sum(len(spans) for _, spans, _ in self.groups)

    def reject(self, problem: str) -> None:
        self.rejected += 1
        if len(self.problems) < 3:
            self.problems.append(problem)


class SpanBuilder:
    """Builds spans under ``limits``; interns equal resources across requests."""

    def __init__(self, limits: _span.SpanLimits = _NO_LIMITS) -> None:
        self.limits = limits
        self._resources: dict[_span.Resource, _span.Resource] = {}

    def build(self, request: Iterable[_data.OtlpResourceSpans]) -> Built:
        """Every resource's spans; raises :class:`InvalidRequestError` for an unusable resource."""
        return stepwise.drive(self.build_steps(request))

    def build_steps(
        self, request: Iterable[_data.OtlpResourceSpans], step: int = _data.DECODE_STEP
    ) -> Generator[None, None, Built]:
        """:meth:`build` as a stepwise computation: it yields after every ``step`` spans."""
        built = Built()
        done = 0
        for r, group in enumerate(request):
            resource, size = self._resource(group.attributes, r, built)
            spans: list[_span.Span] = []
            for item in group.spans:
                span = self._build_span(item, resource, built)
                if span is not None:
                    spans.append(span)
                done += 1
                if done % step == 0:
                    yield
            if spans:
                built.groups.append((resource, spans, size))
        return built

    # -- pieces ----------------------------------------------------------------

    def _cut(self, built: Built, what: str, amount: int = 1) -> None:
        built.cut[what] = built.cut.get(what, 0) + amount

    def _str(self, text: str, built: Built) -> str:
        limit = self.limits.max_tag_value_length
        if len(text) > limit:
            self._cut(built, "value_length")
            return text[:limit]
        return text

    def _tags(
        self, attributes: _data.Attributes, limit: int, built: Built, kind: str
    ) -> dict[str, _span.TagValue]:
        tags: dict[str, _span.TagValue] = {}
        for key, value in attributes:
            key = self._str(key, built)
            if key not in tags and len(tags) >= limit:
                self._cut(built, kind)
                continue
            tags[key] = self._str(value, built) if isinstance(value, str) else value
        return tags

    def _resource(
        self, attributes: _data.Attributes, r: int, built: Built
    ) -> tuple[_span.Resource, int]:
        tags = self._tags(attributes, self.limits.max_tags, built, "resource_attributes")
        service = tags.pop("service.name", DEFAULT_SERVICE)
        if not isinstance(service, str):
            raise InvalidRequestError(
                f"resourceSpans[{r}].resource: service.name must be a string, "
                f"got {type(service).__name__}"
            )
        raw = next((v for k, v in attributes if k == "service.name"), "")
        if isinstance(raw, str) and len(raw) > MAX_SERVICE_NAME:
            raise InvalidRequestError(
                f"resourceSpans[{r}].resource: service.name of {len(raw)} characters, "
                f"at most {MAX_SERVICE_NAME}"
            )
        resource = _span.Resource(service or DEFAULT_SERVICE, tuple(tags.items()))
        interned = self._resources.get(resource)
        if interned is None:
            if len(self._resources) >= _RESOURCE_CACHE:
                self._resources.clear()
            interned = self._resources[resource] = resource
        size = _RESOURCE_BYTES + sys.getsizeof(interned.service_name)
        for key, value in interned.tags:
            size += sys.getsizeof(key) + (sys.getsizeof(value) if isinstance(value, str) else 32)
        return interned, size

    def _context(
        self, item: _data.OtlpSpan | _data.OtlpLink, built: Built
    ) -> tuple[_sc.SpanContext | None, str]:
        if len(item.trace_id) != 16 or not any(item.trace_id):
            return None, f"traceId: {len(item.trace_id)} bytes, expected 16 not all zero"
        if len(item.span_id) != 8 or not any(item.span_id):
            return None, f"spanId: {len(item.span_id)} bytes, expected 8 not all zero"
        trace_state: _sc.TraceState = ()
        if item.trace_state:
            trace_state, problem = _tracestate.parse([item.trace_state])
            if problem:
                self._cut(built, "trace_state")
        return (
            _sc.SpanContext(
                int.from_bytes(item.trace_id, "big"),
                int.from_bytes(item.span_id, "big"),
                sampled=True,
                random=bool(item.flags & 2),
                trace_state=trace_state,
            ),
            "",
        )

    def _build_span(
        self, item: _data.OtlpSpan, resource: _span.Resource, built: Built
    ) -> _span.Span | None:
        context, problem = self._context(item, built)
        if not problem:
            problem = _check_times_and_parent(item)
        if context is None or problem:
            built.reject(f"{place(item.where)}.{problem}")
            return None
        parent = item.parent_span_id
        span = _span.Span(
            context,
            self._str(item.name, built),
            kind=_KINDS.get(item.kind, _span.SpanKind.INTERNAL),
            parent_id=int.from_bytes(parent, "big") if parent and parent != _ZERO_SPAN_ID else None,
            resource=resource,
            references=self._references(item.links, built),
            sampled=True,
            recording=False,
            start_ns=item.start_ns,
            limits=self.limits,
            metrics=_UNCOUNTED,
            end_hook=None,
        )
        span.end_ns = item.end_ns
        span.tags = self._tags(item.attributes, self.limits.max_tags, built, "attributes")
        span.logs = self._logs(item.events, built)
        code = _STATUS.get(item.status_code)
        if code is not None or item.status_message:
            span.status = _span.Status(
                code or _span.StatusCode.UNSET, self._str(item.status_message, built)
            )
        return span

    def _logs(self, events: list[_data.OtlpEvent], built: Built) -> list[_span.LogRecord]:
        limits = self.limits
        if len(events) > limits.max_logs:
            self._cut(built, "events", len(events) - limits.max_logs)
        logs: list[_span.LogRecord] = []
        for event in events[: limits.max_logs]:
            attributes = [("event", event.name), *event.attributes]
            fields = self._tags(attributes, limits.max_log_fields, built, "event_attributes")
            logs.append(_span.LogRecord(event.time_ns, fields))
        return logs

    def _references(self, links: list[_data.OtlpLink], built: Built) -> list[_span.Reference]:
        references: list[_span.Reference] = []
        for link in links:
            if len(references) >= self.limits.max_logs:
                self._cut(built, "links")
                continue
            context, _ = self._context(link, built)
            if context is None:
                self._cut(built, "invalid_links")
                continue
            ref_type = dict(link.attributes).get("opentracing.ref_type")
            kind = (
                _span.ReferenceType.CHILD_OF
                if ref_type == "child_of"
                else _span.ReferenceType.FOLLOWS_FROM
            )
            references.append(_span.Reference(kind, context))
        return references


def _check_times_and_parent(item: _data.OtlpSpan) -> str:
    """What is wrong with the span's parent id or times ("" when nothing)."""
    if item.parent_span_id and len(item.parent_span_id) != 8:
        return f"parentSpanId: {len(item.parent_span_id)} bytes, expected 8 or none"
    if item.start_ns == 0:
        return "startTimeUnixNano: not set"
    if item.end_ns < item.start_ns:
        return f"endTimeUnixNano: {item.end_ns} is before startTimeUnixNano {item.start_ns}"
    return ""
