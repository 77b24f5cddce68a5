"""The tracing middleware: a SERVER span per request, a CLIENT span per upstream call.

The middleware reads :attr:`TracingHolder.current` once; ``None`` means no
tracing at all (the untraced fast path: one attribute read). Otherwise, with
that one :class:`~gatetrace.gateway.state.ActiveTracing` for the whole request:

1. extract the caller's context with the configured formats (a malformed
   header is the propagator's problem: it never raises; even if it did, the
   request would go on as a new trace), filter its baggage through the rules;
2. start the SERVER span ``"{METHOD} {route prefix}"`` with the route's
   namespace sampler if one is configured, else the tracer's (rules see the
   request through :class:`~gatetrace.runtime.sampling.base.RequestInfo`);
3. leave an :class:`~gatetrace.gateway.proxy.UpstreamObserver` for the proxy:
   it strips every incoming trace header, starts the CLIENT span and injects
   the configured formats into the upstream request;
4. at the end, record the status, mark 5xx and upstream failures as errors
   and, for a trace whose sampling decision is still pending, ask for the
   error / latency priority upgrade before the server span finishes.

Attributes follow the OpenTelemetry HTTP semantic conventions. Headers are
never recorded except the configured ``header_tags``, and never the
sensitive ones (Authorization, Cookie, Set-Cookie, Proxy-Authorization and
the configured ``sensitiveHeaders``). Nothing here awaits a reporter.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp
import multidict
from aiohttp import web

from gatetrace.gateway import clientip, proxy, routes, state
from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import context as _context
from gatetrace.runtime import ids, metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _spancontext
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.sampling import base as _sampling

__all__ = ["KNOWN_TRACE_HEADERS", "KNOWN_TRACE_PREFIXES", "TracingMiddleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KNOWN_TRACE_HEADERS: Final = frozenset(
    {
        "traceparent",
        "tracestate",
        "baggage",
        "b3",
        "uber-trace-id",
        "jaeger-debug-id",
        "jaeger-baggage",
        "x-trace-id",
        "x-span-id",
        "x-parent-span-id",
        "x-sampled",
    }
)
"""Trace headers of every format we know, stripped from upstream requests whatever the
configured formats: a stale one next to the gateway's fresh headers would fork the trace,
and unfiltered baggage would bypass the baggage rules."""
KNOWN_TRACE_PREFIXES: Final = ("x-b3-", "uberctx-", "x-baggage-")

_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_GETTER: Final = _propagation.MultiDictGetter()
_SETTER: Final = _propagation.DictSetter()
_SERVER: Final = _span.SpanKind.SERVER
_CLIENT: Final = _span.SpanKind.CLIENT
_ERROR: Final = _span.StatusCode.ERROR
_NO_BAGGAGE: Final = _baggage.EMPTY_BAGGAGE
_PROTOCOL_VERSIONS: Final = {
    aiohttp.HttpVersion10: "1.0",
    aiohttp.HttpVersion11: "1.1",
    aiohttp.HttpVersion(2, 0): "2",
}


def _split_host(host: str) -> tuple[str, int | None]:
    """``example.com:8080`` / ``[::1]:80`` / ``example.com`` -> (address, port)."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            port_text = host[end + 2 :] if host[end + 1 : end + 2] == ":" else ""
            return host[1:end], int(port_text) if port_text.isdigit() else None
        return host, None
    name, sep, port_text = host.rpartition(":")
    if sep and port_text.isdigit() and ":" not in name:
        return name, int(port_text)
    return host, None


class _Fields:
    """The headers stripped before injection, computed once per ActiveTracing."""

    __slots__ = ("active", "exact", "prefixes")

    def __init__(self, active: state.ActiveTracing) -> None:
        exact = set(KNOWN_TRACE_HEADERS)
        prefixes = list(KNOWN_TRACE_PREFIXES)
        for name in active.propagator.fields:
            lower = name.lower()
            if lower.endswith("-"):
                prefixes.append(lower)
            else:
                exact.add(lower)
        self.active = active
        self.exact = frozenset(exact)
        self.prefixes = tuple(sorted(set(prefixes)))


class _UnrecordedTrace:
    """The :class:`~gatetrace.gateway.proxy.UpstreamObserver` of a request whose trace
    the sampler dropped: no span objects at all, only the context to propagate (with
    ``sampled=0``) and the trace id for the response header."""

    __slots__ = ("context", "header_name", "propagator", "strip_exact", "strip_prefixes")

    def __init__(
        self,
        context: _spancontext.SpanContext,
        propagator: _propagation.Propagator,
        fields: _Fields,
        header_name: str,
    ) -> None:
        self.context = context
        self.propagator = propagator
        self.strip_exact = fields.exact
        self.strip_prefixes = fields.prefixes
        self.header_name = header_name

    def on_request(
        self, route: routes.Route, url: str, headers: multidict.CIMultiDict[str]
    ) -> None:
        self.propagator.inject(self.context, headers, _SETTER)

    @property
    def trace_id(self) -> str:
        return ids.format_trace_id(self.context.trace_id)

    def on_response(self, status: int, headers: multidict.CIMultiDict[str]) -> None:
        headers[self.header_name] = "%032x" % self.context.trace_id  # noqa: UP031 (ids.format_trace_id, inlined)

    def on_failure(self, error_type: str, exc: BaseException, *, upstream: bool) -> None:
        pass  # nothing records it

    def on_done(self) -> None:
        pass


class _RequestTrace:
    """The per-request :class:`~gatetrace.gateway.proxy.UpstreamObserver` of a recorded
    trace (sampled, or pending an error/latency priority upgrade)."""

    __slots__ = (
        "active",
        "client",
        "client_end_ns",
        "client_id",
        "client_start_ns",
        "deferred",
        "failure",
        "failure_exc",
        "failure_ns",
        "header_name",
        "method",
        "mono_start",
        "namespace",
        "request",
        "route",
        "server",
        "status",
        "strip_exact",
        "strip_prefixes",
        "trace_id",
        "upstream_failed",
        "upstream_status",
        "url",
    )

    def __init__(
        self,
        active: state.ActiveTracing,
        server: _span.Span,
        method: str,
        fields: _Fields,
        header_name: str,
    ) -> None:
        self.active = active
        self.method = method
        self.mono_start = time.perf_counter_ns()
        self.server = server
        self.trace_id = server.context.trace_id_hex
        self.client: _span.Span | None = None
        self.strip_exact = fields.exact
        self.strip_prefixes = fields.prefixes
        self.header_name = header_name
        self.failure = ""
        self.upstream_failed = False
        self.status = 0
        self.namespace: str | None = None
        self.deferred = False
        """The trace awaits its priority decision: the request attributes are written only
        if it is upgraded (most such traces are discarded, so most never are)."""
        self.request: web.Request | None = None
        self.route: routes.Route | None = None
        self.url = ""
        # a deferred trace's client span: its id and times, built only if it is kept
        self.client_id = 0
        self.client_start_ns = 0
        self.client_end_ns = 0
        self.failure_exc: BaseException | None = None
        self.failure_ns = 0
        self.upstream_status = 0
        """The upstream's answer (0: none, or the gateway's own 502/504 after a failure)."""

    def on_request(
        self, route: routes.Route, url: str, headers: multidict.CIMultiDict[str]
    ) -> None:
        if self.deferred:
            # No span yet: the upstream gets the id the client span will have if kept.
            self.route = route
            self.url = url
            self.client_id = ids.new_span_id()
            self.client_start_ns = self.now_ns()
            context = self.server.context._replace(span_id=self.client_id, remote=False)
            self.active.propagator.inject(context, headers, _SETTER)
            return
        client = self.active.tracer.start_span(
            self.method, kind=_CLIENT, parent=self.server, start_ns=self.now_ns()
        )
        self.client = client
        self.client_tags(client, route, url)
        self.active.propagator.inject(client.context, headers, _SETTER)

    def build_deferred_client(self) -> None:
        """The trace was kept: the client span it skipped, as it would have been."""
        route = self.route
        if not self.client_id or route is None:
            return  # no upstream call was made
        client = self.active.tracer.start_span(
            self.method,
            kind=_CLIENT,
            parent=self.server,
            start_ns=self.client_start_ns,
            span_id=self.client_id,
        )
        self.client = client
        self.client_tags(client, route, self.url)
        if self.upstream_status:
            self.client_status(client, self.upstream_status)
        if self.upstream_failed:
            exc = self.failure_exc
            client.set_status(_ERROR, f"upstream: {self.failure}")
            client.set_tag("error.type", self.failure)
            fields: dict[str, _span.TagValue] = {"event": "error"}
            if exc is not None:
                fields["error.kind"] = type(exc).__name__
                fields["message"] = str(exc)
            client.log(fields, self.failure_ns or None)
        client.finish(self.client_end_ns or self.now_ns())

    def client_tags(self, client: _span.Span, route: routes.Route, url: str) -> None:
        query = url.find("?")
        tags = client.tags
        tags["http.request.method"] = self.method
        tags["url.full"] = url if query < 0 else url[:query]
        tags["server.address"] = route.upstream_host
        tags["server.port"] = route.upstream_port
        tags["gatetrace.route"] = route.name
        if route.namespace is not None:
            tags["gatetrace.upstream.namespace"] = route.namespace

    def on_response(self, status: int, headers: multidict.CIMultiDict[str]) -> None:
        self.status = status
        headers[self.header_name] = self.trace_id
        if not self.upstream_failed:
            self.upstream_status = status
            client = self.client
            if client is not None and client.recording:
                self.client_status(client, status)

    @staticmethod
    def client_status(client: _span.Span, status: int) -> None:
        client.tags["http.response.status_code"] = status
        if status >= 400:  # client spans: 4xx and 5xx are errors (OTel HTTP semconv)
            client.set_status(_ERROR)
            client.set_tag("error.type", str(status))

    def on_failure(self, error_type: str, exc: BaseException, *, upstream: bool) -> None:
        if not upstream:
            self.server.log({"event": "client_aborted", "message": str(exc)})
            return
        self.upstream_failed = True
        self.failure = error_type
        if self.deferred:  # for the client span, should the trace be kept
            self.failure_exc = exc
            self.failure_ns = self.now_ns()
        for span in (self.client, self.server):
            if span is not None and span.recording:
                span.set_status(_ERROR, f"upstream: {error_type}")
                span.set_tag("error.type", error_type)
                span.log({"event": "error", "error.kind": type(exc).__name__, "message": str(exc)})

    def on_done(self) -> None:
        client = self.client
        if client is not None:
            client.finish(self.now_ns())
        elif self.deferred and self.client_id:
            self.client_end_ns = self.now_ns()

    def now_ns(self) -> int:
        """Wall-clock time on the server span's timeline (its start plus monotonic time
        elapsed), so the client span always nests inside the server span."""
        return self.server.start_ns + time.perf_counter_ns() - self.mono_start


class TracingMiddleware:
    """The aiohttp middleware (``app.middlewares``) tracing every proxied request."""

    __middleware_version__ = 1  # aiohttp: a new-style middleware, not a factory
    __slots__ = ("_blocked", "_errors", "_fields", "_header_name", "holder", "resolver", "table")

    def __init__(
        self,
        holder: state.TracingHolder,
        table: routes.RouteTable,
        resolver: clientip.ClientIpResolver,
        *,
        trace_id_header: str = "X-Trace-Id",
        blocked_headers: frozenset[str] = frozenset(),
        registry: metrics.Registry | None = None,
    ) -> None:
        self.holder = holder
        self.table = table
        self.resolver = resolver
        self._header_name = trace_id_header
        self._blocked = frozenset(h.lower() for h in blocked_headers)
        self._fields: _Fields | None = None
        registry = registry if registry is not None else metrics.Registry()
        self._errors = registry.counter(
            "gatetrace_gateway_tracing_errors",
            "Tracing failures that left a request untraced (the request went on)",
            ["stage"],
        )

    def _fields_for(self, active: state.ActiveTracing) -> _Fields:
        fields = self._fields
        if fields is None or fields.active is not active:
            fields = self._fields = _Fields(active)
        return fields

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        active = self.holder.current
        if active is None:
            return await handler(request)
        try:
            trace = self._start(active, request)
        except Exception:  # tracing must never break a request: go on untraced
            self._errors.inc(("start",))
            return await handler(request)
        if isinstance(trace, _UnrecordedTrace):  # the sampler dropped it: no spans
            request[proxy.OBSERVER] = trace
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers[self._header_name] = trace.trace_id
                raise
            if not response.prepared:
                response.headers[self._header_name] = trace.trace_id
            return response
        server = trace.server
        token = _context.attach(server)
        request[proxy.OBSERVER] = trace
        status = 0
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[self._header_name] = trace.trace_id
            return response
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[self._header_name] = trace.trace_id
            raise
        except asyncio.CancelledError:
            # the client went away and aiohttp cancelled the handler: not a server error
            server.log({"event": "client_aborted"})
            raise
        except BaseException as exc:
            status = 500
            if server.recording:
                server.record_exception(exc)
            raise
        finally:
            _context.detach(token)
            self._finish(active, trace, status)

    def _start(
        self, active: state.ActiveTracing, request: web.Request
    ) -> _RequestTrace | _UnrecordedTrace:
        headers = request.headers
        raw_path = request.rel_url.raw_path
        route = self.table.match(raw_path)
        request[proxy.MATCHED_ROUTE] = route if route is not None else proxy.NO_ROUTE
        try:
            extracted = active.propagator.extract(headers, _GETTER, _propagation.EMPTY)
        except Exception:  # propagators must not raise; if one does, treat as absent
            self._errors.inc(("extract",))
            extracted = _propagation.EMPTY
        if extracted is _propagation.EMPTY:  # no trace headers: the common new trace
            baggage = _NO_BAGGAGE
            parent = None
        else:
            baggage, parent = self._continued(active, extracted)
        method = request.method
        if method not in _KNOWN_METHODS:
            method = "_OTHER"
        if route is None:
            name = method
            info = _sampling.RequestInfo(request.method, raw_path, headers, "")
            sampler = None
        else:
            name = method + route.span_name_suffix
            info = _sampling.RequestInfo(request.method, raw_path, headers, route.name)
            namespace = route.namespace
            sampler = None if namespace is None else active.sampler_for(namespace)
        root = active.tracer.start_root_context(
            name, kind=_SERVER, parent=parent, request=info, sampler=sampler
        )
        if type(root) is _spancontext.SpanContext:
            if parent is None and baggage:
                root = root._replace(baggage=baggage)
            return _UnrecordedTrace(
                root, active.propagator, self._fields_for(active), self._header_name
            )
        assert isinstance(root, _span.Span)
        server = root
        if parent is None and baggage:
            server.context = server.context._replace(baggage=baggage)
        trace = _RequestTrace(active, server, method, self._fields_for(active), self._header_name)
        trace.namespace = route.namespace if route is not None else None
        if server.pending:  # tags only if a priority upgrade keeps it (see _finish)
            trace.deferred = True
            trace.request = request
            trace.route = route
        else:
            self._server_tags(active, request, server, route, method)
        return trace

    def _continued(
        self, active: state.ActiveTracing, extracted: _propagation.Extracted
    ) -> tuple[_baggage.Baggage, _spancontext.SpanContext | None]:
        """The filtered baggage and the parent (or decision-only hint) of an incoming
        context."""
        baggage: _baggage.Baggage = active.baggage.apply(extracted.baggage)
        parent = extracted.context
        if parent is not None and parent.baggage is not baggage:
            parent = parent._replace(baggage=baggage)
        elif parent is None and (extracted.sampled is not None or extracted.debug):
            # a decision without ids (``b3: 0``, ``b3: d``): the tracer starts a new trace
            # and lets the sampler honour the decision
            parent = _spancontext.SpanContext(
                0, 0, extracted.sampled, extracted.debug, remote=True, baggage=baggage
            )
        return baggage, parent

    def _server_tags(
        self,
        active: state.ActiveTracing,
        request: web.Request,
        server: _span.Span,
        route: routes.Route | None,
        method: str,
    ) -> None:
        headers = request.headers
        tags = server.tags
        tags["http.request.method"] = method
        if method == "_OTHER":
            tags["http.request.method_original"] = request.method
        limit = server._limits.max_tag_value_length
        path = request.rel_url.raw_path
        if len(path) <= limit:  # set_tag's length check, inlined for the common case
            tags["url.path"] = path
        else:
            server.set_tag("url.path", path)
        tags["url.scheme"] = request.scheme
        version = request.version
        text = _PROTOCOL_VERSIONS.get(version)
        tags["network.protocol.version"] = text or f"{version.major}.{version.minor}"
        host = headers.get("Host")
        if host:
            address, port = _split_host(host)
            tags["server.address"] = address
            if port is not None:
                tags["server.port"] = port
        peer = request.remote
        if peer:
            tags["network.peer.address"] = peer
            forwarded = headers.getall("X-Forwarded-For", ())
            client = self.resolver.resolve(peer, forwarded) if forwarded else peer
            if client:
                tags["client.address"] = client
        agent = headers.get("User-Agent")
        if agent is not None:
            if len(agent) <= limit:
                tags["user_agent.original"] = agent
            else:
                server.set_tag("user_agent.original", agent)
        if route is not None:
            tags["http.route"] = route.prefix
            tags["gatetrace.route"] = route.name
            if route.namespace is not None:
                tags["gatetrace.upstream.namespace"] = route.namespace
        blocked = self._blocked
        for header, tag in active.header_tags:
            if header.lower() in blocked:
                continue
            value = headers.get(header)
            if value is not None:
                server.set_tag(tag, value)
        keys = active.baggage_tag_keys
        if keys:
            bag = server.context.baggage
            for key in keys:
                value = bag.get(key)
                if value is not None:
                    server.set_tag(key, value)

    def _deferred_tags(self, active: state.ActiveTracing, trace: _RequestTrace) -> None:
        """An upgraded trace gets the attributes its spans skipped while pending."""
        request = trace.request
        if request is not None:
            self._server_tags(active, request, trace.server, trace.route, trace.method)
        trace.build_deferred_client()

    def _finish(self, active: state.ActiveTracing, trace: _RequestTrace, status: int) -> None:
        server = trace.server
        try:
            client = trace.client
            if client is not None and not client.is_finished:
                client.finish(trace.now_ns())
            if status:  # 0: no response (the client went away first)
                server.tags["http.response.status_code"] = status
                if status >= 500 and not trace.upstream_failed:
                    server.set_status(_ERROR)
                    server.set_tag("error.type", str(status))
            if server.pending:
                priority = active.priority_for(trace.namespace)
                is_error = trace.upstream_failed or status >= 500
                upgraded = False
                if priority.errors and is_error:
                    upgraded = server.upgrade("error")
                elif (
                    priority.slower_than_ns is not None
                    and time.perf_counter_ns() - trace.mono_start > priority.slower_than_ns
                ):
                    upgraded = server.upgrade("slow")
                if upgraded and trace.deferred:
                    self._deferred_tags(active, trace)
        except Exception:
            self._errors.inc(("finish",))
        finally:
            server.finish(trace.now_ns())
            trace.request = None  # request[OBSERVER] is this trace: no cycle left behind
