"""The kit's core, framework-neutral: one :class:`Kit` per service process.

A :class:`Kit` holds the service's live tracing config (a :class:`~.state.TracingHolder`
the admin port's ``PUT /admin/v1/tracing`` swaps), its retro buffer and keeper. The
framework adapters (:mod:`.aiohttp_server`, :mod:`.aiohttp_client`, :mod:`.asgi`,
:mod:`.httpx_client`) call four methods:

- :meth:`Kit.start_server` (:meth:`Kit.open_server` for adapters) at a request's start:
  extracts the caller's context, starts the SERVER span and makes it current. A trace
  the edge marked pending (:mod:`.pending`) is recorded into the retro buffer instead of
  dropped; every other trace follows the config's samplers (any ``gt`` member removed,
  so only a pending trace's spans carry it). Only a trace the tracer records gets Span
  objects at once: an unsampled one carries its context alone (a span is built only if
  the handler asks for the current one), a pending one is held as
  :class:`FinishedSpan` records, built into spans only if the trace is kept.
- :meth:`Kit.finish_server` at its end: status, local keep (the service's own error or
  slowness under its ``prioritize`` policy) and the span's end. :meth:`ServerTrace.breadcrumbs`
  is the response header value (the service's retro address first).
- :meth:`Kit.start_client` / :meth:`Kit.finish_client` around an outgoing call: a CLIENT
  span child of the current span, the configured formats injected (a pending trace stays
  ``sampled=0`` with its mark), the downstream's breadcrumbs collected.

Nothing here awaits a reporter or raises into the request: a tracing failure is counted
(``gatetrace_embed_tracing_errors``) and the request goes on untraced.
"""

import contextvars
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import gatetrace
from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import buffer as _buffer
from gatetrace.embed import exporters as _exporters
from gatetrace.embed import keep as _keep
from gatetrace.embed import pending as _pending
from gatetrace.embed import semconv, state, tracing_apply
from gatetrace.policy import build as _build
from gatetrace.runtime import context as _context
from gatetrace.runtime import ids
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import process_resource as _process_resource
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.reporting import memory as _memory
from gatetrace.runtime.sampling import base as _sampling

__all__ = ["ClientCall", "FinishedSpan", "Kit", "ServerTrace"]

_log = logging.getLogger(__name__)
_SERVER_KIND: Final = _span.SpanKind.SERVER
_CLIENT_KIND: Final = _span.SpanKind.CLIENT
_SETTER: Final = _propagation.DictSetter()
_new_tuple = tuple.__new__
_ServerRequest: Final = semconv.ServerRequest
_ClientRequest: Final = semconv.ClientRequest
_RequestInfo: Final = _sampling.RequestInfo
_T = TypeVar("_T")
_CURRENT: contextvars.ContextVar["ServerTrace | None"] = contextvars.ContextVar(
    "gatetrace_embed_server", default=None
)


def _recording_span(
    tracer: _tracer.Tracer,
    context: _sc.SpanContext,
    name: str,
    kind: _span.SpanKind,
    parent_id: int | None,
    start_ns: int,
    mono_start: int,
    *,
    root: bool,
    recording: bool = True,
) -> _span.Span:
    """A recording span of a pending trace: no sampler asked (the edge decides), no hook
    (the kit hands it to the buffer when it ends). ``recording=False``: the non-recording
    span a handler asked for in a dropped trace."""
    span = _span.Span(
        context,
        name,
        kind=kind,
        parent_id=parent_id,
        resource=tracer.resource,
        references=(),
        sampled=recording,
        recording=recording,
        start_ns=start_ns,
        limits=tracer.limits,
        metrics=tracer.metrics,
        end_hook=None,
        is_local_root=root,
    )
    span._mono_start = mono_start
    return span


class FinishedSpan(NamedTuple):
    """A finished span of a pending trace as the retro buffer holds it until a keep (most
    never come): its fields, not a :class:`~gatetrace.runtime.span.Span`; :meth:`build`
    makes the span only when it is exported. Only a span nothing wrote on beyond its
    route and status is held this way (a failure, a span anyone asked for, is a Span)."""

    context: _sc.SpanContext
    name: str
    kind: _span.SpanKind
    parent_id: int | None
    start_ns: int
    end_ns: int
    status: int
    """The response status (0: none)."""
    route: str | None
    """``http.route`` learnt at the end (ASGI), else None."""
    tracer: _tracer.Tracer
    is_local_root: bool
    attributes: semconv.ServerRequest | semconv.ClientRequest | None
    """The request attributes, written into the tags on keep (after the status)."""

    def build(self) -> _span.Span:
        """The finished span, as it would have been recorded, its request attributes
        written."""
        span = _recording_span(
            self.tracer,
            self.context,
            self.name,
            self.kind,
            self.parent_id,
            self.start_ns,
            0,
            root=self.is_local_root,
        )
        if self.route:
            span.set_tag("http.route", self.route)
        if self.status:
            if self.kind is _SERVER_KIND:
                semconv.server_status(span, self.status)
            else:
                semconv.client_status(span, self.status)
        attributes = self.attributes
        if attributes is not None:
            attributes.write(span.tags, self.tracer.limits.max_tag_value_length)
        span.end_ns = self.end_ns
        return span

    def retained_bytes(self) -> int:
        """What keeping this record alive costs (its tracestate and baggage apart), its
        request attributes included."""
        attributes = self.attributes
        size = _FINISHED_BYTES + sys.getsizeof(self.name)
        return size if attributes is None else size + attributes.retained_bytes()


_FINISHED_BYTES: Final = 450
"""A :class:`FinishedSpan` beyond its name and attributes: the record, its context, their
numbers and the buffer's list slot (tracemalloc, CPython 3.11: 453 with a trace id of its
own)."""


class ServerTrace(_context.SpanStandIn):
    """One request's server span and what its client calls brought back.

    Current while the request runs (:func:`gatetrace.runtime.context.current_span` builds
    its span if anyone asks). A span is built at the start only when the tracer records
    the trace; an unsampled trace carries only its context (counted as a span started and
    finished ``not_sampled`` at once), a pending one is recorded compactly into the retro
    buffer (:class:`FinishedSpan`)."""

    __slots__ = (
        "_server_token",
        "_span_token",
        "active",
        "context",
        "downstream",
        "kit",
        "mono_start",
        "name",
        "parent_id",
        "recorded",
        "request",
        "retro",
        "route",
        "span",
        "start_ns",
    )

    def __init__(
        self,
        kit: "Kit",
        active: state.ActiveTracing,
        context: _sc.SpanContext,
        name: str,
        parent_id: int | None,
        span: _span.Span | None,
        retro: bool,
    ) -> None:
        self.kit = kit
        self.active = active
        self.context = context
        """The server span's context (a pending trace's: recording, ``sampled`` inside)."""
        self.name = name
        self.parent_id = parent_id
        self.span = span
        """The span, once built (at the start when the tracer records the trace)."""
        self.retro = retro
        """The trace is pending at the edge: its spans go to the retro buffer."""
        self.recorded = retro or (span is not None and span.recording)
        """Its spans are recorded (exported, pending a priority decision, or buffered):
        the request's attributes and status are wanted."""
        self.request: semconv.ServerRequest | None = None
        """The request attributes: written on a recorded span at once, on a retro-buffered
        one only if the trace is kept (most never are); None when nothing records them."""
        self.route: str | None = None
        """``http.route`` learnt at the end (ASGI) for a span not built yet."""
        self.downstream: Sequence[str] = ()
        """Breadcrumbs of this request's downstream calls."""
        if self.recorded:
            self.start_ns = time.time_ns() if span is None else span.start_ns
            self.mono_start = time.perf_counter_ns()
        else:
            self.start_ns = self.mono_start = 0
        self._span_token: Any = None
        self._server_token: Any = None

    def materialize(self) -> _span.Span:
        """The server span (built now if it was not: non-recording for an unsampled trace,
        recording for a pending one)."""
        span = self.span
        if span is not None:
            return span
        tracer = self.active.tracer
        if self.retro:
            span = _recording_span(
                tracer,
                self.context,
                self.name,
                _SERVER_KIND,
                self.parent_id,
                self.start_ns,
                self.mono_start,
                root=True,
            )
            if self.route:
                span.set_tag("http.route", self.route)
        else:  # already counted as started and finished not_sampled
            span = _recording_span(
                tracer,
                self.context,
                self.name,
                _SERVER_KIND,
                self.parent_id,
                time.time_ns(),
                time.perf_counter_ns(),
                root=True,
                recording=False,
            )
        self.span = span
        return span

    def found_route(self, method: str, route: str) -> None:
        """The route template, known only once the app ran (ASGI): the span's name and
        ``http.route`` when the trace is recorded."""
        span = self.span
        if span is not None:
            if span.recording:
                span.set_operation_name(semconv.server_name(method, route))
                span.set_tag("http.route", route)
        elif self.retro:
            self.name = semconv.server_name(method, route)
            self.route = route

    def breadcrumbs(self) -> str | None:
        """The response header value (this service's address, then the downstream ones),
        or None when the trace is not buffered here."""
        if not self.retro:
            return None
        if not self.downstream:  # a leaf of the path: its own address alone
            return self.kit.address
        limit = self.active.retro.max_breadcrumbs
        return _breadcrumbs.format_header(
            _breadcrumbs.merge((self.kit.address,), self.downstream, limit)
        )


class ClientCall:
    """One outgoing call's CLIENT span of a recorded trace (a pending trace's is built
    only if it fails or is kept)."""

    __slots__ = (
        "context",
        "mono_start",
        "name",
        "parent_id",
        "request",
        "retro",
        "server",
        "span",
        "start_ns",
    )

    def __init__(
        self,
        span: _span.Span | None,
        retro: bool,
        server: ServerTrace | None,
        request: semconv.ClientRequest,
    ) -> None:
        self.span = span
        self.retro = retro
        self.server = server
        self.request = request
        self.context: _sc.SpanContext | None = None
        self.name = ""
        self.parent_id: int | None = None
        self.start_ns = self.mono_start = 0

    def materialize(self, tracer: _tracer.Tracer) -> _span.Span:
        """The span (a pending trace's built now)."""
        span = self.span
        if span is None:
            assert self.context is not None
            span = self.span = _recording_span(
                tracer,
                self.context,
                self.name,
                _CLIENT_KIND,
                self.parent_id,
                self.start_ns,
                self.mono_start,
                root=False,
            )
        return span


class Kit:
    """One service's tracing: config holder, applier, retro buffer, keeper, metrics.

    ``service`` names the spans' service; ``token`` is the admin token (the operator's
    Secret: the admin port and keep requests use it); ``address`` is this service's retro
    address as other pods reach it (``http://POD_IP:ADMIN_PORT``; set by
    :func:`gatetrace.embed.admin_server.start_admin` when left empty); ``sink`` is where a
    ``memory`` reporter writes (None: a config naming one is refused). ``version`` is
    ``service.version``; ``environ`` (default ``os.environ``: the kit is its service's edge)
    gives the OpenTelemetry resource variables (``OTEL_RESOURCE_ATTRIBUTES``: the chart's
    Downward API attributes), see :mod:`gatetrace.runtime.process_resource`.
    """

    def __init__(
        self,
        service: str,
        *,
        token: str,
        address: str = "",
        sink: _memory.SpanSink | None = None,
        registry: _metrics.Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
        version: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.resource = _process_resource.detect(
            os.environ if environ is None else environ,
            default_service=service,
            explicit_service=True,
            component="service",
            service_version=version,
            sdk_version=gatetrace.__version__,
        )
        """This process's resource attributes (on every span it exports)."""
        for problem in self.resource.problems:
            _log.warning("%s", problem)
        self.token = token
        self.address = address
        self.registry = registry if registry is not None else _metrics.Registry()
        self.holder = state.TracingHolder()
        self.buffer = _buffer.RetroBuffer(
            max_bytes=16 << 20, max_age_seconds=30.0, registry=self.registry, clock=clock
        )
        self.buffer.export = self._export_kept
        self.keeper = _keep.Keeper(token, self.registry)
        self.applier = tracing_apply.Applier(
            self.holder,
            service=service,
            registry=self.registry,
            exporters=_exporters.factory(sink, what="service"),
            on_applied=self._on_applied,
            process=self.resource.attributes,
        )
        self._errors = self.registry.counter(
            "gatetrace_embed_tracing_errors",
            "Tracing failures that left a request or call untraced (it went on)",
            ["stage"],
        )
        self._getter = _propagation.MultiDictGetter()

    # -- config ----------------------------------------------------------

    async def apply(self, config: Mapping[str, Any], *, revision: int = 0) -> None:
        """Apply a bootstrap config (the operator's pushes then replace it)."""
        await self.applier.apply(config, revision=revision, source="bootstrap")

    def _on_applied(self, parts: _build.RuntimeParts, config: Any) -> None:
        retro = config.retro
        self.buffer.configure(
            max_bytes=retro.max_buffer_bytes, max_age_seconds=float(retro.max_age_seconds)
        )

    def _export_kept(self, span: _span.Span, reason: str) -> None:
        active = self.holder.current
        processor = active.tracer.processor if active is not None else None
        if processor is not None:
            processor.on_end(span)

    async def close(self) -> None:
        """Flush the reporters and stop the keeper."""
        await self.keeper.close()
        await self.applier.close()

    # -- server side -----------------------------------------------------

    def start_server(
        self,
        headers: Any,
        *,
        method: str,
        path: str,
        scheme: str = "http",
        route: str | None = None,
        host: str | None = None,
        peer: str | None = None,
        user_agent: str | None = None,
        protocol_version: str | None = None,
        getter: _propagation.Getter | None = None,
        query: str = "",
    ) -> ServerTrace | None:
        """Start the SERVER span of a request and make it current (None: no config yet,
        or tracing failed; the request goes on untraced). ``headers``: the request headers,
        read through ``getter`` (default: a case-insensitive multidict); ``query``: the raw
        query string without ``?`` (``url.query``, secret-looking values redacted). See
        :meth:`open_server` for attributes read only when the trace is recorded."""
        # tuple.__new__: a NamedTuple's own constructor runs Python code (hot path)
        request = _new_tuple(
            _ServerRequest,
            (method, path, scheme, route, host, peer, user_agent, protocol_version, query),
        )
        return self.open_server(headers, method, path, route, _given, request, getter)

    def open_server(
        self,
        headers: Any,
        method: str,
        path: str,
        route: str | None,
        describe: Callable[[_T], semconv.ServerRequest],
        source: _T,
        getter: _propagation.Getter | None = None,
    ) -> ServerTrace | None:
        """:meth:`start_server` for adapters: the request's attributes are
        ``describe(source)``, asked only when the trace is recorded or buffered (an
        unsampled request's are never read)."""
        active = self.holder.current
        if active is None:
            return None
        try:
            trace = self._start_server(active, headers, getter or self._getter, method, path, route)
            if trace.recorded:
                request = trace.request = describe(source)
                span = trace.span
                if span is not None:
                    request.write(span.tags, active.tracer.limits.max_tag_value_length)
        except Exception:
            self._errors.inc(("start",))
            return None
        active.inflight.enter()
        trace._span_token = _context.attach(trace)
        trace._server_token = _CURRENT.set(trace)
        return trace

    def _start_server(
        self,
        active: state.ActiveTracing,
        headers: Any,
        getter: _propagation.Getter,
        method: str,
        path: str,
        route: str | None,
    ) -> ServerTrace:
        extracted = active.propagator.extract(headers, getter, _propagation.EMPTY)
        parent = extracted.context
        if parent is not None:
            baggage = active.baggage.apply(extracted.baggage)
            if parent.baggage is not baggage:
                parent = parent._replace(baggage=baggage)
        name = semconv.server_name(method, route)
        if parent is not None and active.retro.enabled and _pending.is_pending(parent):
            context = _new_tuple(
                _sc.SpanContext,
                (
                    parent.trace_id,
                    ids.new_span_id(),
                    True,
                    parent.debug,
                    parent.random,
                    False,
                    parent.trace_state,
                    parent.baggage,
                    "",
                ),
            )
            return ServerTrace(self, active, context, name, parent.span_id, None, True)
        if parent is not None:
            parent = _pending.unmarked(parent)
        info = _new_tuple(
            _RequestInfo, (method, path, _Headers(headers, getter), route or "", False)
        )
        root = active.tracer.start_root_context(name, _SERVER_KIND, parent, info)
        if type(root) is _sc.SpanContext:  # dropped: no span unless someone asks for it
            parent_id = parent.span_id if parent is not None and parent.trace_id else None
            return ServerTrace(self, active, root, name, parent_id or None, None, False)
        assert isinstance(root, _span.Span)
        return ServerTrace(self, active, root.context, name, root.parent_id, root, False)

    def finish_server(
        self, trace: ServerTrace, status: int, error: BaseException | None = None
    ) -> None:
        """End the request's SERVER span (``status`` 0: no response was sent); a pending
        trace that failed or was slow here is kept by this service's own priority policy."""
        try:
            token = trace._span_token
            if token is not None:
                trace._span_token = None
                _context.detach(token)
                _CURRENT.reset(trace._server_token)
            span = trace.span
            if not trace.recorded:  # unsampled: counted at the start, nothing to write
                if span is not None:  # built for someone who asked: ended all the same
                    if error is not None:
                        span.record_exception(error)
                    span.finish()
                return
            if span is None and (error is not None or status >= 500):
                span = trace.materialize()  # a failure is written on a span
            reason = self._local_priority(trace, status, error)
            if span is None:  # pending, untouched: held compactly until a keep
                end_ns = trace.start_ns + max(time.perf_counter_ns() - trace.mono_start, 0)
                record = _new_tuple(
                    FinishedSpan,
                    (
                        trace.context,
                        trace.name,
                        _SERVER_KIND,
                        trace.parent_id,
                        trace.start_ns,
                        end_ns,
                        status,
                        trace.route,
                        trace.active.tracer,
                        True,
                        trace.request,
                    ),
                )
                self.buffer.add_record(record)
            else:
                if error is not None:
                    span.record_exception(error)
                if status:
                    semconv.server_status(span, status)
                if reason and span.pending:
                    span.upgrade(reason)
                span.finish()
                if trace.retro:
                    self._buffer(trace.active, span, trace.request)
            if reason and trace.retro:
                self._keep_here(trace, reason)
        except Exception:
            self._errors.inc(("finish",))
        finally:
            trace.active.inflight.leave()

    @staticmethod
    def _local_priority(trace: ServerTrace, status: int, error: BaseException | None) -> str:
        """``error`` / ``slow`` when this service's own ``prioritize`` asks to keep."""
        priority = trace.active.priority
        if priority.errors and (status >= 500 or (error is not None and not status)):
            return "error"
        slower = priority.slower_than_ns
        if slower is not None and time.perf_counter_ns() - trace.mono_start > slower:
            return "slow"
        return ""

    def _buffer(
        self,
        active: state.ActiveTracing,
        span: _span.Span,
        request: semconv.ServerRequest | semconv.ClientRequest | None,
    ) -> None:
        self.buffer.add(span, request, active.tracer.limits.max_tag_value_length)

    def _keep_here(self, trace: ServerTrace, reason: str) -> None:
        budget = trace.active.priority.budget
        if budget is not None and not budget.try_acquire(reason):
            return
        trace_id = trace.context.trace_id
        self.buffer.keep(trace_id, reason)
        if trace.downstream:
            self.keeper.keep(trace_id, reason, trace.downstream, trace.active.retro)

    # -- client side -----------------------------------------------------

    def start_client(
        self, method: str, url: object, headers: MutableMapping[str, str]
    ) -> ClientCall | None:
        """Start a CLIENT span under the current span and inject the context into
        ``headers`` (a case-insensitive mutable str mapping: aiohttp's ``CIMultiDict``,
        ``httpx.Headers``); ``url``: a ``str`` or what gives it (a ``yarl.URL``), read only
        when the call is recorded. None when no span is current, or when nothing is left to
        do at the call's end: an unsampled trace's call is only its context, injected and
        counted (a span started and finished ``not_sampled``) at once."""
        current = _context.active()
        if current is None:
            return None
        try:
            if type(current) is ServerTrace and current.span is None:
                return self._start_unbuilt(current, method, url, headers)
            if isinstance(current, _context.SpanStandIn):
                current = current.materialize()
            assert isinstance(current, _span.Span)
            return self._start_client(current, _CURRENT.get(), method, url, headers)
        except Exception:
            self._errors.inc(("client_start",))
            return None

    def _start_unbuilt(
        self, server: ServerTrace, method: str, url: object, headers: MutableMapping[str, str]
    ) -> ClientCall | None:
        """A call under a server span not built: unsampled or pending."""
        active = server.active
        parent = server.context
        span_id = ids.new_span_id()
        if not server.retro:
            context = _new_tuple(
                _sc.SpanContext,
                (
                    parent.trace_id,
                    span_id,
                    parent.sampled,
                    parent.debug,
                    parent.random,
                    False,
                    parent.trace_state,
                    parent.baggage,
                    "",
                ),
            )
            headers.pop(_breadcrumbs.HEADER, None)  # never a caller's own breadcrumbs
            active.propagator.inject(context, headers, _SETTER)
            m = active.tracer.metrics
            m.dropped_roots.n += 1  # started not recording ...
            m.dropped_contexts.n += 1  # ... and finished not_sampled: nothing more to do
            return None
        fields = (
            parent.trace_id,
            span_id,
            False,  # downstream: still unsampled, still marked
            parent.debug,
            parent.random,
            False,
            parent.trace_state,
            parent.baggage,
            "",
        )
        headers.pop(_breadcrumbs.HEADER, None)
        active.propagator.inject(_new_tuple(_sc.SpanContext, fields), headers, _SETTER)
        call = ClientCall(None, True, server, _new_tuple(_ClientRequest, (method, str(url))))
        call.context = _new_tuple(_sc.SpanContext, (parent.trace_id, span_id, True, *fields[3:]))
        call.name = semconv.client_name(method)
        call.parent_id = parent.span_id
        call.start_ns = time.time_ns()
        call.mono_start = time.perf_counter_ns()
        return call

    def _start_client(
        self,
        parent: _span.Span,
        server: ServerTrace | None,
        method: str,
        url: object,
        headers: MutableMapping[str, str],
    ) -> ClientCall | None:
        active = server.active if server is not None else self.holder.current
        if active is None:
            return None
        retro = parent.sampled and _pending.MEMBER in parent.context.trace_state
        name = semconv.client_name(method)
        if retro:
            pctx = parent.context
            span = _recording_span(
                active.tracer,
                _new_tuple(
                    _sc.SpanContext,
                    (
                        pctx.trace_id,
                        ids.new_span_id(),
                        True,
                        pctx.debug,
                        pctx.random,
                        False,
                        pctx.trace_state,
                        pctx.baggage,
                        "",
                    ),
                ),
                name,
                _CLIENT_KIND,
                pctx.span_id,
                time.time_ns(),
                time.perf_counter_ns(),
                root=False,
            )
        else:
            span = active.tracer.start_span(name, kind=_CLIENT_KIND, parent=parent)
        request = _new_tuple(_ClientRequest, (method, str(url)))
        context = span.context
        if retro:  # downstream: still unsampled, still marked
            context = _new_tuple(_sc.SpanContext, (*context[:2], False, *context[3:]))
        elif span.recording:
            request.write(span.tags, active.tracer.limits.max_tag_value_length)
        headers.pop(_breadcrumbs.HEADER, None)  # never a caller's own breadcrumbs
        active.propagator.inject(context, headers, _SETTER)
        return ClientCall(span, retro, server, request)

    def finish_client(
        self,
        call: ClientCall,
        status: int,
        breadcrumbs: Sequence[str] = (),
        error: BaseException | None = None,
    ) -> None:
        """End a CLIENT span: the response status (0: none), the downstream's breadcrumb
        header values (kept for the request's own answer), or the failure."""
        server = call.server
        active = server.active if server is not None else self.holder.current
        span = call.span
        if span is None and (error is not None or status >= 400) and active is not None:
            span = call.materialize(active.tracer)  # a failure is written on a span
        try:
            if span is not None:
                if error is not None:
                    span.record_exception(error)
                elif status:
                    semconv.client_status(span, status)
            if call.retro and breadcrumbs and server is not None:
                limit = server.active.retro.max_breadcrumbs
                found, _refused = _breadcrumbs.parse(breadcrumbs, limit)
                server.downstream = _breadcrumbs.merge(server.downstream, found, limit)
        except Exception:
            self._errors.inc(("client_finish",))
        finally:
            if span is not None:
                span.finish()
                if call.retro and active is not None:
                    self._buffer(active, span, call.request)
            elif active is not None and call.context is not None:  # pending, untouched
                end_ns = call.start_ns + max(time.perf_counter_ns() - call.mono_start, 0)
                record = _new_tuple(
                    FinishedSpan,
                    (
                        call.context,
                        call.name,
                        _CLIENT_KIND,
                        call.parent_id,
                        call.start_ns,
                        end_ns,
                        status,
                        None,
                        active.tracer,
                        False,
                        call.request,
                    ),
                )
                self.buffer.add_record(record)

    # -- the retro endpoint ----------------------------------------------

    def keep(self, trace_id: int, reason: str) -> int:
        """A keep request arrived: export the trace's buffered spans (how many)."""
        return self.buffer.keep(trace_id, reason)


class _Headers(Mapping[str, str]):
    """Request headers as the rule samplers read them (``get`` by lowercase name)."""

    __slots__ = ("_carrier", "_getter")

    def __init__(self, carrier: Any, getter: _propagation.Getter) -> None:
        self._carrier = carrier
        self._getter = getter

    def __getitem__(self, key: str) -> str:
        values = self._getter.get(self._carrier, key)
        if not values:
            raise KeyError(key)
        return values[0]

    def __iter__(self) -> Any:
        return iter(self._getter.keys(self._carrier))

    def __len__(self) -> int:
        return sum(1 for _ in self._getter.keys(self._carrier))


def _given(request: semconv.ServerRequest) -> semconv.ServerRequest:
    return request


def header_values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every value of header ``name`` (lowercase) in ``headers`` pairs."""
    return [value for key, value in headers if key.lower() == name]
