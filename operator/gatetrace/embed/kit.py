"""The kit's core, framework-neutral: one :class:`Kit` per service process.

A :class:`Kit` holds the service's live tracing config (a :class:`~.state.TracingHolder`
the admin port's ``PUT /admin/v1/tracing`` swaps), its retro buffer and keeper. The
framework adapters (:mod:`.aiohttp_server`, :mod:`.aiohttp_client`, :mod:`.asgi`,
:mod:`.httpx_client`) call four methods:

- :meth:`Kit.start_server` at a request's start: extracts the caller's context, starts
  the SERVER span and makes it current. A trace the edge marked pending
  (:mod:`.pending`) is recorded by the retro tracer into the buffer instead of dropped;
  every other trace follows the config's samplers (any ``gt`` member removed, so only a
  pending trace's spans carry it).
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
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Final

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
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.reporting import memory as _memory
from gatetrace.runtime.sampling import base as _sampling

__all__ = ["ClientCall", "Kit", "ServerTrace"]

_log = logging.getLogger(__name__)
_SERVER_KIND: Final = _span.SpanKind.SERVER
_CLIENT_KIND: Final = _span.SpanKind.CLIENT
_SETTER: Final = _propagation.DictSetter()
_new_tuple = tuple.__new__
_ServerRequest: Final = semconv.ServerRequest
_ClientRequest: Final = semconv.ClientRequest
_RequestInfo: Final = _sampling.RequestInfo
_CURRENT: contextvars.ContextVar["ServerTrace | None"] = contextvars.ContextVar(
    "gatetrace_embed_server", default=None
)


class ServerTrace:
    """One request's server span and what its client calls brought back."""

    __slots__ = (
        "_tokens",
        "active",
        "downstream",
        "kit",
        "mono_start",
        "request",
        "retro",
        "span",
    )

    def __init__(
        self,
        kit: "Kit",
        active: state.ActiveTracing,
        span: _span.Span,
        retro: bool,
        request: semconv.ServerRequest,
    ) -> None:
        self.kit = kit
        self.active = active
        self.span = span
        self.retro = retro
        """The trace is pending at the edge: its spans go to the retro buffer."""
        self.request = request
        """The request attributes: written on a recorded span at once, on a retro-buffered
        one only if the trace is kept (most never are)."""
        self.downstream: list[str] = []
        """Breadcrumbs of this request's downstream calls."""
        self.mono_start = time.perf_counter_ns()
        self._tokens: tuple[Any, Any] | None = None

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
    """One outgoing call's CLIENT span."""

    __slots__ = ("request", "retro", "server", "span")

    def __init__(
        self,
        span: _span.Span,
        retro: bool,
        server: ServerTrace | None,
        request: semconv.ClientRequest,
    ) -> None:
        self.span = span
        self.retro = retro
        self.server = server
        self.request = request


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

    @staticmethod
    def _retro_span(
        active: state.ActiveTracing,
        name: str,
        kind: _span.SpanKind,
        parent: _sc.SpanContext,
        *,
        root: bool,
    ) -> _span.Span:
        """A recording span of a pending trace, child of ``parent``: no sampler asked (the
        edge decides), no hook (the kit hands it to the buffer when it ends)."""
        tracer = active.tracer
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
        return _span.Span(
            context,
            name,
            kind=kind,
            parent_id=parent.span_id,
            resource=tracer.resource,
            references=(),
            sampled=True,
            recording=True,
            start_ns=time.time_ns(),
            limits=tracer.limits,
            metrics=tracer.metrics,
            end_hook=None,
            is_local_root=root,
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
        query string without ``?`` (``url.query``, secret-looking values redacted)."""
        active = self.holder.current
        if active is None:
            return None
        # tuple.__new__: a NamedTuple's own constructor runs Python code (hot path)
        request = _new_tuple(
            _ServerRequest,
            (method, path, scheme, route, host, peer, user_agent, protocol_version, query),
        )
        try:
            trace = self._start_server(active, headers, getter or self._getter, request)
            span = trace.span
            if span.recording and not trace.retro:
                request.write(span.tags, active.tracer.limits.max_tag_value_length)
        except Exception:
            self._errors.inc(("start",))
            return None
        active.inflight.enter()
        trace._tokens = (_context.attach(trace.span), _CURRENT.set(trace))
        return trace

    def _start_server(
        self,
        active: state.ActiveTracing,
        headers: Any,
        getter: _propagation.Getter,
        request: semconv.ServerRequest,
    ) -> ServerTrace:
        extracted = active.propagator.extract(headers, getter, _propagation.EMPTY)
        parent = extracted.context
        if parent is not None:
            baggage = active.baggage.apply(extracted.baggage)
            if parent.baggage is not baggage:
                parent = parent._replace(baggage=baggage)
        name = semconv.server_name(request.method, request.route)
        if parent is not None and active.retro.enabled and _pending.is_pending(parent):
            span = self._retro_span(active, name, _SERVER_KIND, parent, root=True)
            return ServerTrace(self, active, span, True, request)
        if parent is not None:
            parent = _pending.unmarked(parent)
        info = _new_tuple(
            _RequestInfo,
            (request.method, request.path, _Headers(headers, getter), request.route or "", False),
        )
        span = active.tracer.start_span(name, kind=_SERVER_KIND, parent=parent, request=info)
        return ServerTrace(self, active, span, False, request)

    def finish_server(
        self, trace: ServerTrace, status: int, error: BaseException | None = None
    ) -> None:
        """End the request's SERVER span (``status`` 0: no response was sent); a pending
        trace that failed or was slow here is kept by this service's own priority policy."""
        span = trace.span
        try:
            if trace._tokens is not None:
                span_token, server_token = trace._tokens
                trace._tokens = None
                _context.detach(span_token)
                _CURRENT.reset(server_token)
            if error is not None:
                span.record_exception(error)
            if status:
                semconv.server_status(span, status)
            reason = self._local_priority(trace, status, error)
            if reason and span.pending:
                span.upgrade(reason)
            span.finish()
            if trace.retro:
                self._buffer(trace.active, span, trace.request)
                if reason:
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
        request: semconv.ServerRequest | semconv.ClientRequest,
    ) -> None:
        self.buffer.add(span, request, active.tracer.limits.max_tag_value_length)

    def _keep_here(self, trace: ServerTrace, reason: str) -> None:
        budget = trace.active.priority.budget
        if budget is not None and not budget.try_acquire(reason):
            return
        trace_id = trace.span.context.trace_id
        self.buffer.keep(trace_id, reason)
        if trace.downstream:
            self.keeper.keep(trace_id, reason, trace.downstream, trace.active.retro)

    # -- client side -----------------------------------------------------

    def start_client(
        self, method: str, url: str, headers: MutableMapping[str, str]
    ) -> ClientCall | None:
        """Start a CLIENT span under the current span and inject the context into
        ``headers`` (a case-insensitive mutable str mapping: aiohttp's ``CIMultiDict``,
        ``httpx.Headers``); None when no span is current."""
        parent = _context.current_span()
        server = _CURRENT.get()
        if parent is None:
            return None
        try:
            active = server.active if server is not None else self.holder.current
            if active is None:
                return None
            retro = parent.sampled and _pending.MEMBER in parent.context.trace_state
            name = semconv.client_name(method)
            if retro:
                span = self._retro_span(active, name, _CLIENT_KIND, parent.context, root=False)
            else:
                span = active.tracer.start_span(name, kind=_CLIENT_KIND, parent=parent)
            request = _new_tuple(_ClientRequest, (method, url))
            context = span.context
            if retro:  # downstream: still unsampled, still marked
                context = _new_tuple(_sc.SpanContext, (*context[:2], False, *context[3:]))
            elif span.recording:
                request.write(span.tags, active.tracer.limits.max_tag_value_length)
            headers.pop(_breadcrumbs.HEADER, None)  # never a caller's own breadcrumbs
            active.propagator.inject(context, headers, _SETTER)
        except Exception:
            self._errors.inc(("client_start",))
            return None
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
        span = call.span
        try:
            if error is not None:
                span.record_exception(error)
            elif status:
                semconv.client_status(span, status)
            server = call.server
            if call.retro and breadcrumbs and server is not None:
                limit = server.active.retro.max_breadcrumbs
                found, _refused = _breadcrumbs.parse(breadcrumbs, limit)
                server.downstream = _breadcrumbs.merge(server.downstream, found, limit)
        except Exception:
            self._errors.inc(("client_finish",))
        finally:
            span.finish()
            if call.retro:
                active = call.server.active if call.server is not None else self.holder.current
                if active is not None:
                    self._buffer(active, span, call.request)

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


def header_values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every value of header ``name`` (lowercase) in ``headers`` pairs."""
    return [value for key, value in headers if key.lower() == name]
