"""The tracer: starts spans, asks the sampler, hands finished spans on.

A :class:`Tracer` is cheap and immutable after construction: the gateway
builds a new one for each tracing config and swaps the reference, so a
request keeps the tracer (sampler, hook) it started with.
"""

import contextvars
import time
import types
from collections.abc import Mapping, Sequence
from typing import Final, Protocol

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import context as _context
from gatetrace.runtime import ids, metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.sampling import base as _sampling

__all__ = ["CURRENT", "SAMPLER_PARAM", "SAMPLER_TYPE", "SpanProcessor", "Tracer", "TracerMetrics"]


class SpanProcessor(Protocol):
    """Receives every exported (sampled) span once it finished. Must not block."""

    def on_end(self, span: _span.Span) -> None: ...


class _Current:
    """Marker: take the parent from the active span in the context."""


CURRENT: Final = _Current()

Parent = _span.Span | _sc.SpanContext | None | _Current


SAMPLER_TYPE: Final = "gatetrace.sampler.type"
"""The root span's sampler (``const``, ``probabilistic``...): Jaeger clients' ``sampler.type``
in our own namespace; the Jaeger reporters write it back as ``sampler.type``."""
SAMPLER_PARAM: Final = "gatetrace.sampler.param"
"""The sampler's parameter (the rate, the traces/s, the decision): ``sampler.param``."""
_SAMPLER_BLOCKS_CACHED: Final = 64


class TracerMetrics:
    """The tracer's counters, registered in ``registry`` under ``gatetrace_spans_*``."""

    def __init__(self, registry: metrics.Registry | None = None) -> None:
        self.registry = registry if registry is not None else metrics.Registry()
        r = self.registry
        self.started = r.counter("gatetrace_spans_started", "Spans started", ["recording"])
        self.sampled = r.counter("gatetrace_spans_sampled", "Spans exported (sampled)", [])
        self.finished = r.counter(
            "gatetrace_spans_finished",
            "Spans finished by outcome (exported, not_sampled, pending, discarded)",
            ["outcome"],
        )
        self.limits = r.counter(
            "gatetrace_span_limits_hit", "Tags, values, logs cut by span limits", ["what"]
        )
        self.decisions = r.counter(
            "gatetrace_sampler_decisions",
            "Root sampling decisions by sampler, reason and decision",
            ["sampler", "reason", "decision"],
        )
        self.processor_errors = r.counter(
            "gatetrace_span_processor_errors", "Exceptions raised by a span processor", []
        )
        self._recording = ("true",)
        self._not_recording = ("false",)
        # Tallies: bare increments on the request path, shared by every tracer whose
        # metrics live in the same registry (a tracer per applied config).
        self.recording_started = self.started.tally(self._recording)
        self.dropped_roots = self.started.tally(self._not_recording)
        """Spans started not recording. A root context the sampler dropped before any
        Span was built (:meth:`Tracer.start_root_context`) is counted here and, at
        once, as finished ``not_sampled``; that share is :attr:`dropped_contexts`."""
        self.finish_counts = _span.FinishCounts(self.finished)
        self.dropped_contexts = self.finish_counts.not_sampled
        self.exported = self.sampled.tally()
        self.decision_tallies: dict[tuple[str, str, _sampling.Decision], metrics.Tally] = {}
        """(sampler, reason, decision) -> its tally in :attr:`decisions` (a bare increment
        per root decision; as many as the sampler's series)."""

    def decision_tally(
        self, sampler_type: str, reason: str, decision: _sampling.Decision
    ) -> metrics.Tally:
        """The tally of one (sampler, reason, decision) series of :attr:`decisions`."""
        tally = self.decisions.tally((sampler_type, reason, _DECISION_NAMES[decision]))
        self.decision_tallies[(sampler_type, reason, decision)] = tally
        return tally

    def limit_hit(self, what: str, amount: int = 1) -> None:
        self.limits.inc((what,), amount)


class _AlwaysSample:
    def should_sample(self, params: _sampling.SamplingParams) -> _sampling.SamplingResult:
        return _sampling.SamplingResult(_sampling.Decision.SAMPLE, "const", True, "always")

    def describe(self) -> str:
        return "const(true)"


_DECISION_NAMES = {d: d.name.lower() for d in _sampling.Decision}
_SAMPLE: Final = _sampling.Decision.SAMPLE  # module globals: a class attribute read is not
_DROP: Final = _sampling.Decision.DROP  # specialized in CPython 3.11, a global read is
_RECORD_ONLY: Final = _sampling.Decision.RECORD_ONLY
_SAMPLER_ERROR: Final = _sampling.SamplingResult(_DROP, "error", 0, "sampler_error")
_NO_BAGGAGE: Final = _baggage.EMPTY_BAGGAGE
_new_tuple = tuple.__new__


class Tracer:
    """Creates spans for one :class:`~gatetrace.runtime.span.Resource`."""

    __slots__ = (
        "_hook",
        "_sampler_blocks",
        "limits",
        "metrics",
        "processor",
        "resource",
        "sampler",
    )

    def __init__(
        self,
        resource: _span.Resource,
        *,
        sampler: _sampling.Sampler | None = None,
        processor: SpanProcessor | None = None,
        limits: _span.SpanLimits | None = None,
        tracer_metrics: TracerMetrics | None = None,
    ) -> None:
        self.resource = resource
        self.sampler: _sampling.Sampler = sampler if sampler is not None else _AlwaysSample()
        self.processor = processor
        self.limits = limits if limits is not None else _span.SpanLimits()
        self.metrics = tracer_metrics if tracer_metrics is not None else TracerMetrics()
        self._hook = self._export
        self._sampler_blocks: dict[tuple[str, object, type], _span.TagBlock] = {}

    def _sampler_block(self, sampler_type: str, param: object) -> _span.TagBlock | None:
        """The block of a decision's ``gatetrace.sampler.*`` tags (cached, a few dozen at
        most), or None for values a block does not take (then they are set one by one)."""
        try:
            block = _span.TagBlock([(SAMPLER_TYPE, sampler_type), (SAMPLER_PARAM, param)])  # type: ignore[list-item]
        except TypeError:
            return None
        if type(sampler_type) is str and not (type(param) is float and not param):
            # not a zero float (0.0 == -0.0: one would stand for the other), nor a str
            # subclass (equal to its plain str)
            blocks = self._sampler_blocks
            if len(blocks) >= _SAMPLER_BLOCKS_CACHED:
                blocks.clear()
            blocks[(sampler_type, param, type(param))] = block
        return block

    def _export(self, span: _span.Span) -> None:
        """The finished-span hook: never lets a processor's exception reach the request."""
        self.metrics.exported.n += 1
        processor = self.processor
        if processor is None:
            return
        try:
            processor.on_end(span)
        except Exception:
            self.metrics.processor_errors.inc()

    def start_span(
        self,
        name: str,
        *,
        kind: _span.SpanKind = _span.SpanKind.INTERNAL,
        parent: Parent = CURRENT,
        references: Sequence[_span.Reference] = (),
        tags: Mapping[str, _span.TagValue] | None = None,
        start_ns: int | None = None,
        request: _sampling.RequestInfo | None = None,
        sampler: _sampling.Sampler | None = None,
        span_id: int | None = None,
    ) -> _span.Span:
        """Start a span. ``parent``: a local span, a (remote) SpanContext, None for a
        new trace, or the active span (default). ``sampler`` overrides the tracer's
        sampler for this root decision (e.g. a route's namespace override).
        ``span_id``: an id handed out before (already propagated), else a new one."""
        if isinstance(parent, _Current):
            parent = _context.current_span()
        if isinstance(parent, _span.Span):
            span = self.start_child(parent, name, kind, start_ns, span_id or 0, references)
        else:
            if not span_id:
                span_id = ids.new_span_id()
            if start_ns is None:
                start_ns = time.time_ns()
            root = self._start_root(
                name, kind, parent, span_id, references, start_ns, request, sampler
            )
            assert isinstance(root, _span.Span)
            span = root
            m = self.metrics
            (m.recording_started if span.recording else m.dropped_roots).n += 1
        if tags and span.recording:
            span.set_tags(tags)
        return span

    def start_child(
        self,
        parent: _span.Span,
        name: str,
        kind: _span.SpanKind = _span.SpanKind.INTERNAL,
        start_ns: int | None = None,
        span_id: int = 0,
        references: Sequence[_span.Reference] = (),
    ) -> _span.Span:
        """A child of the local span ``parent``: :meth:`start_span` with ``parent`` a Span,
        without its other cases (the per-request client span of the gateway takes this)."""
        if not span_id:
            span_id = ids.new_span_id()
        if start_ns is None:
            start_ns = time.time_ns()
        m = self.metrics
        # unpacked: a NamedTuple field read is a generic attribute lookup in CPython 3.11
        # (a type lookup and a descriptor call each), one unpacking is a few instructions
        trace_id, parent_id, sampled, debug, random, _, trace_state, baggage, _ = parent.context
        span = _span.Span(
            _new_tuple(
                _sc.SpanContext,
                (trace_id, span_id, sampled, debug, random, False, trace_state, baggage, ""),
            ),
            name,  # positional, in the constructor's order: no keyword matching per call
            kind,
            parent_id,
            self.resource,
            references,
            parent.sampled,
            parent.recording,
            start_ns,
            self.limits,
            m,
            self._hook,
            parent._group,
            False,
            m.finish_counts,
        )
        (m.recording_started if span.recording else m.dropped_roots).n += 1
        return span

    def start_root_context(
        self,
        name: str,
        kind: _span.SpanKind,
        parent: _sc.SpanContext | None,
        request: _sampling.RequestInfo | None = None,
        sampler: _sampling.Sampler | None = None,
    ) -> _span.Span | _sc.SpanContext:
        """Start a local root span, unless the sampler drops the trace: then only its
        :class:`~gatetrace.runtime.spancontext.SpanContext` comes back (the ids and
        flags to propagate) and no Span is built, since nothing of it would ever be
        recorded. The gateway's path for unsampled requests; such a context counts as
        a span started and finished ``not_sampled`` at once."""
        root = self._start_root(
            name, kind, parent, ids.new_span_id(), (), None, request, sampler, True
        )
        m = self.metrics
        if type(root) is _sc.SpanContext:
            m.dropped_roots.n += 1
            m.dropped_contexts.n += 1
            return root
        assert isinstance(root, _span.Span)
        (m.recording_started if root.recording else m.dropped_roots).n += 1
        return root

    def _start_root(
        self,
        name: str,
        kind: _span.SpanKind,
        parent: _sc.SpanContext | None,
        span_id: int,
        references: Sequence[_span.Reference],
        start_ns: int | None,
        request: _sampling.RequestInfo | None,
        sampler: _sampling.Sampler | None,
        context_only: bool = False,
    ) -> _span.Span | _sc.SpanContext:
        hint: _sc.SpanContext | None = None
        # what the new context takes from its origin (none: a new trace's defaults)
        debug, random, debug_id = False, True, ""
        trace_state: _sc.TraceState = ()
        baggage = _NO_BAGGAGE
        if parent is None:
            trace_id, parent_id = ids.new_trace_id(), None
        else:
            # unpacked once (see start_child: a field read is a generic attribute lookup)
            p_trace, p_span, p_sampled, p_debug, p_random, _, p_state, p_bag, p_debug_id = parent
            if p_trace and p_span:  # a valid parent
                trace_id, parent_id = p_trace, p_span
                debug, random, trace_state, baggage = p_debug, p_random, p_state, p_bag
                debug_id = p_debug_id
            else:
                # A decision-only context (``b3: 0``, a ``jaeger-debug-id`` without a
                # trace, baggage alone) has no ids to continue, but its flags still
                # steer the sampler and its baggage still travels with the new trace.
                if not p_trace and not p_span and (p_debug or p_sampled is not None or p_bag):
                    hint = parent
                    debug, baggage, debug_id = p_debug, p_bag, p_debug_id
                parent = None
                trace_id, parent_id = ids.new_trace_id(), None
        chosen = sampler if sampler is not None else self.sampler
        params = _new_tuple(
            _sampling.SamplingParams, (trace_id, name, kind, parent or hint, request)
        )
        try:
            decision, sampler_type, sampler_param, reason, budget = chosen.should_sample(params)
        except Exception:  # a sampler bug (a result that is no SamplingResult too) must not
            # break the request: fall back to drop
            decision, sampler_type, sampler_param, reason, budget = _SAMPLER_ERROR
        tally = self.metrics.decision_tallies.get((sampler_type, reason, decision))
        if tally is None:
            tally = self.metrics.decision_tally(sampler_type, reason, decision)
        tally.n += 1
        sampled = decision is _SAMPLE
        recording = decision is not _DROP
        group = None
        if decision is _RECORD_ONLY:
            group = _span.PendingGroup(budget, self._hook)
        # tuple.__new__ with every field: half the cost of the NamedTuple's __new__
        fields = (trace_id, span_id, sampled, debug, random, False, trace_state, baggage, "")
        ctx = _new_tuple(_sc.SpanContext, fields)
        if context_only and not recording:
            return ctx
        if start_ns is None:
            start_ns = time.time_ns()
        span = _span.Span(
            ctx,
            name,  # positional, in the constructor's order: no keyword matching per call
            kind,
            parent_id,
            self.resource,
            references,
            sampled,
            recording,
            start_ns,
            self.limits,
            self.metrics,
            self._hook,
            group,
            True,
            self.metrics.finish_counts,
        )
        if recording:
            param = sampler_param
            try:  # the sampler's tags: a block shared by every span of the same decision
                block = self._sampler_blocks.get((sampler_type, param, type(param)))
            except TypeError:  # an unhashable param (a sampler of someone else's)
                block = None
            if block is None:
                block = self._sampler_block(sampler_type, param)
            if block is not None:
                span.tags = dict(block.tags)
                span.shared = block
            else:
                span.tags[SAMPLER_TYPE] = sampler_type
                span.tags[SAMPLER_PARAM] = param
            if debug_id:  # the parent's or the hint's
                span.tags["jaeger-debug-id"] = debug_id
        return span

    def start_as_current(
        self,
        name: str,
        *,
        kind: _span.SpanKind = _span.SpanKind.INTERNAL,
        parent: Parent = CURRENT,
        tags: Mapping[str, _span.TagValue] | None = None,
    ) -> "_ActiveSpan":
        """Start a span, make it active for the block, finish it on exit
        (``with tracer.start_as_current("op") as span: ...``)."""
        return _ActiveSpan(self.start_span(name, kind=kind, parent=parent, tags=tags))


class _ActiveSpan:
    """The context manager of :meth:`Tracer.start_as_current`.

    A slotted class rather than a ``contextlib`` generator: it is on the hot
    path, and this is a third of the cost.
    """

    __slots__ = ("_token", "span")

    def __init__(self, span: _span.Span) -> None:
        self.span = span
        self._token: contextvars.Token[_span.Span | _context.SpanStandIn | None] | None = None

    def __enter__(self) -> _span.Span:
        self._token = _context.attach(self.span)
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        span = self.span
        if exc is not None:
            span.record_exception(exc)
        if self._token is not None:
            _context.detach(self._token)
            self._token = None
        span.finish()
