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
from aiohttp import web

from gatetrace.embed import keep as _keep
from gatetrace.gateway import clientip, proxy, request_trace, retro, routes, state
from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import context as _context
from gatetrace.runtime import metrics
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _spancontext
from gatetrace.runtime import url_redaction as _url_redaction
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.sampling import base as _sampling

__all__ = ["KNOWN_TRACE_HEADERS", "KNOWN_TRACE_PREFIXES", "TracingMiddleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_KNOWN_METHODS: Final = routes.HTTP_METHODS
_GETTER: Final = _propagation.MultiDictGetter()
_SERVER: Final = _span.SpanKind.SERVER
_ERROR: Final = _span.StatusCode.ERROR
_NO_BAGGAGE: Final = _baggage.EMPTY_BAGGAGE
_new_tuple = tuple.__new__  # a NamedTuple with every field: no Python-level __new__
_BLOCKS_CACHED: Final = 256
_HOST_CACHED_LENGTH: Final = 261  # a 253-character DNS name, ":" and a port
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


KNOWN_TRACE_HEADERS: Final = request_trace.KNOWN_TRACE_HEADERS
KNOWN_TRACE_PREFIXES: Final = request_trace.KNOWN_TRACE_PREFIXES


class TracingMiddleware:
    """The aiohttp middleware (``app.middlewares``) tracing every proxied request."""

    __middleware_version__ = 1  # aiohttp: a new-style middleware, not a factory
    __slots__ = (
        "_blocked",
        "_blocks",
        "_errors",
        "_fields",
        "_header_name",
        "holder",
        "keeper",
        "resolver",
        "table",
    )

    def __init__(
        self,
        holder: state.TracingHolder,
        table: routes.RouteTable,
        resolver: clientip.ClientIpResolver,
        *,
        trace_id_header: str = "X-Trace-Id",
        blocked_headers: frozenset[str] = frozenset(),
        registry: metrics.Registry | None = None,
        keeper: _keep.Keeper | None = None,
    ) -> None:
        self.holder = holder
        self.keeper = keeper
        """Sends the keep requests of kept pending traces (None: no retro collection)."""
        self.table = table
        self.resolver = resolver
        self._header_name = trace_id_header
        self._blocked = frozenset(h.lower() for h in blocked_headers)
        self._fields: request_trace.Fields | None = None
        self._blocks: dict[
            tuple[str | None, str, str | None, str, aiohttp.HttpVersion],
            _span.TagBlock,
        ] = {}
        """(route name, method, Host, scheme, version) -> the server span's shared tags."""
        registry = registry if registry is not None else metrics.Registry()
        self._errors = registry.counter(
            "gatetrace_gateway_tracing_errors",
            "Tracing failures that left a request untraced (the request went on)",
            ["stage"],
        )

    def _fields_for(self, active: state.ActiveTracing) -> request_trace.Fields:
        fields = self._fields
        if fields is None or fields.active is not active:
            fields = self._fields = request_trace.Fields(active)
        return fields

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        active = self.holder.current
        if active is None:
            return await handler(request)
        inflight = active.inflight
        inflight.enter()  # its reporters stay until this request's spans are in
        try:
            try:
                trace = self._start(active, request)
            except Exception:  # tracing must never break a request: go on untraced
                self._errors.inc(("start",))
                return await handler(request)
            if type(trace) is request_trace.UnrecordedTrace:  # the sampler dropped it: no spans
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
        finally:
            inflight.leave()

    def _start(
        self, active: state.ActiveTracing, request: web.Request
    ) -> request_trace.RequestTrace | request_trace.UnrecordedTrace:
        headers = request.headers
        raw_path = proxy.request_path(request, self.table)
        if raw_path is None:  # refused (climbs above a prefix...): the proxy answers 400
            raw_path = request.rel_url.raw_path
            route = None
        else:
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
        # only a debug flag makes the peer's trust matter (sampling.debug: trusted)
        trusted = parent is not None and parent.debug and self._peer_trusted(request)
        if route is None:
            name = method
            info = _new_tuple(
                _sampling.RequestInfo, (request.method, raw_path, headers, "", trusted)
            )
            sampler = None
        else:
            name = route.span_names[method]
            info = _new_tuple(
                _sampling.RequestInfo, (request.method, raw_path, headers, route.name, trusted)
            )
            namespace = route.namespace
            sampler = None if namespace is None else active.sampler_for(namespace)
        # positional: keyword arguments cost a name match each, on every request
        root = active.tracer.start_root_context(name, _SERVER, parent, info, sampler)
        if type(root) is _spancontext.SpanContext:
            if parent is None and baggage is not _NO_BAGGAGE and baggage:
                root = root._replace(baggage=baggage)
            return request_trace.UnrecordedTrace(
                root, active.propagator, self._fields_for(active), self._header_name
            )
        assert isinstance(root, _span.Span)
        server = root
        if parent is None and baggage is not _NO_BAGGAGE and baggage:
            server.context = server.context._replace(baggage=baggage)
        fields = self._fields
        if fields is None or fields.active is not active:
            fields = self._fields_for(active)
        trace = request_trace.RequestTrace(active, server, method, fields, self._header_name)
        trace.namespace = route.namespace if route is not None else None
        # a sampled span is never pending: its slot read spares the property's call
        if not server.sampled and server.pending:  # tags only if an upgrade keeps it (_finish)
            trace.defer(request, route)
        else:
            self._server_tags(active, request, server, route, method)
        return trace

    def _peer_trusted(self, request: web.Request) -> bool:
        """Whether the socket peer is one of the trusted proxies."""
        if not self.resolver.enabled:
            return False
        address = clientip.parse_address(request.remote or "")
        return address is not None and self.resolver.is_trusted(address)

    def _continued(
        self, active: state.ActiveTracing, extracted: _propagation.Extracted
    ) -> tuple[_baggage.Baggage, _spancontext.SpanContext | None]:
        """The filtered baggage and the parent (or decision-only hint) of an incoming
        context."""
        baggage: _baggage.Baggage = active.baggage.apply(extracted.baggage)
        parent = extracted.context
        if parent is not None and parent.trace_state:  # only the gateway marks pending
            parent = retro.incoming(parent)
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
        host = headers.get("Host")
        scheme = request.scheme
        version = request.version
        # what every request to this route with this method and Host shares: one block,
        # copied in C and written by the encoders as one cached fragment (keyed by the
        # route's name: a Route's own hash is dataclass code over all of its fields)
        name = route.name if route is not None else None
        block = self._blocks.get((name, method, host, scheme, version))
        if block is None:
            block = self._server_block(route, method, host, scheme, version)
        server.share(block)
        tags: dict[str, _span.TagValue] = {}
        # ``length``: the sum of the lengths of the values that may be long; when it is
        # within the span's value limit, none needs cutting and the span skips its check
        # (the block's values are checked by Span.share).
        if method == "_OTHER":
            tags["http.request.method_original"] = original = request.method
            length = len(original)
        else:
            length = 0
        url = request.rel_url
        tags["url.path"] = path = url.raw_path
        length += len(path)
        query = url.raw_query_string
        if query:
            tags["url.query"] = query = _url_redaction.redact_query(query)
            length += len(query)
        peer = request.remote
        if peer:
            tags["network.peer.address"] = peer
            forwarded = headers.getall("X-Forwarded-For", ())
            client = self.resolver.resolve(peer, forwarded) if forwarded else peer
            length += len(peer)
            if client:
                tags["client.address"] = client
                length += len(client)
        agent = headers.get("User-Agent")
        if agent is not None:
            tags["user_agent.original"] = agent
            length += len(agent)
        blocked = self._blocked
        for header, tag in active.header_tags:
            if header.lower() in blocked:
                continue
            value = headers.get(header)
            if value is not None:
                tags[tag] = value
                length += len(value)
        keys = active.baggage_tag_keys
        if keys:
            bag = server.context.baggage
            for key in keys:
                value = bag.get(key)
                if value is not None:
                    tags[key] = value
                    length += len(value)
        # one pass for the count limit (and the value limit, unless nothing can be too long)
        server.adopt_tags(tags, checked=length <= active.tracer.limits.max_tag_value_length)

    def _server_block(
        self,
        route: routes.Route | None,
        method: str,
        host: str | None,
        scheme: str,
        version: aiohttp.HttpVersion,
    ) -> _span.TagBlock:
        """The server span's tags shared by the requests to ``route`` with this method,
        Host, scheme and HTTP version; cached when the Host is a name and a port (the
        cache holds at most a few hundred: Host headers are client data)."""
        items: list[tuple[str, _span.TagValue]] = [("http.request.method", method)]
        items.append(("url.scheme", scheme))
        text = _PROTOCOL_VERSIONS.get(version)
        items.append(("network.protocol.version", text or f"{version.major}.{version.minor}"))
        if host:
            address, port = _split_host(host)
            items.append(("server.address", address))
            if port is not None:
                items.append(("server.port", port))
        if route is not None:
            items.append(("http.route", route.prefix))
            items.append(("gatetrace.route", route.name))
            if route.namespace is not None:
                items.append(("gatetrace.upstream.namespace", route.namespace))
        block = _span.TagBlock(items)
        if host is None or len(host) <= _HOST_CACHED_LENGTH:
            blocks = self._blocks
            if len(blocks) >= _BLOCKS_CACHED:
                blocks.clear()
            blocks[(route.name if route is not None else None, method, host, scheme, version)] = (
                block
            )
        return block

    def _deferred_tags(
        self, active: state.ActiveTracing, trace: request_trace.RequestTrace
    ) -> None:
        """An upgraded trace gets the attributes its spans skipped while pending."""
        request = trace.request
        if request is not None:
            self._server_tags(active, request, trace.server, trace.route, trace.method)
        trace.build_deferred_client()

    def _finish(
        self, active: state.ActiveTracing, trace: request_trace.RequestTrace, status: int
    ) -> None:
        server = trace.server
        try:
            client = trace.client
            if client is not None and client.end_ns is None:
                client.finish(trace.now_ns())
            if status:  # 0: no response (the client went away first)
                server.set_tag("http.response.status_code", status)
                if status >= 500 and not trace.upstream_failed:
                    server.set_status(_ERROR)
                    server.set_tag("error.type", str(status))
            if not server.sampled and server.pending:  # (see _start)
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
                if upgraded and trace.retro_crumbs:
                    reason = server.tags.get("sampling.priority.reason", "kept")
                    retro.keep(
                        self.keeper, active, server.trace_id, str(reason), trace.retro_crumbs
                    )
        except Exception:
            self._errors.inc(("finish",))
        finally:
            # trace.now_ns(), inlined
            server.finish(server.start_ns + time.perf_counter_ns() - trace.mono_start)
            trace.request = None  # request[OBSERVER] is this trace: no cycle left behind
