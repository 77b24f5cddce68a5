"""The per-request observers the tracing middleware hands to the proxy.

:class:`UnrecordedTrace` for a request whose trace the sampler dropped (no
spans, only the context to propagate); :class:`RequestTrace` for a recorded
one: it starts the CLIENT span (or, while a priority decision is pending,
only hands out its id and keeps what is needed to build it if the trace is
kept), injects the configured formats and records the upstream's answer.
"""

import time
from collections.abc import Sequence
from typing import Final, final

import multidict
from aiohttp import web

from gatetrace.gateway import retro, routes, state
from gatetrace.runtime import ids
from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext as _spancontext
from gatetrace.runtime import url_redaction as _url_redaction
from gatetrace.runtime.propagation import base as _propagation
from gatetrace.runtime.propagation import composite as _composite

__all__ = [
    "KNOWN_TRACE_HEADERS",
    "KNOWN_TRACE_PREFIXES",
    "Fields",
    "RequestTrace",
    "UnrecordedTrace",
]

_READ_ELSEWHERE: Final = frozenset({"jaeger-baggage", "x-parent-span-id"})
"""Trace headers other implementations of our formats send but our propagators do not read
(Jaeger clients' ``jaeger-baggage``, the legacy ``X-Parent-Span-Id``)."""
_OTHER_FAMILIES: Final = ("ot-baggage-", "ot-tracer-")
"""OpenTracing's header families, which no format reads: forwarded as they came they would
fork the trace and bypass the baggage rules."""


def _every_format_fields() -> tuple[frozenset[str], tuple[str, ...]]:
    """The headers (and ``prefix-`` families) every registered format reads or writes,
    from the runtime's format registry: a new format is covered without an edit here."""
    exact: set[str] = set(_READ_ELSEWHERE)
    prefixes: set[str] = set(_OTHER_FAMILIES)
    for factory in _composite.FORMATS.values():
        for name in factory(
            _propagation.IGNORE_FAILURES, _propagation.DEFAULT_BAGGAGE_LIMITS
        ).fields:
            lower = name.lower()
            (prefixes.add if lower.endswith("-") else exact.add)(lower)
    return frozenset(exact), tuple(sorted(prefixes))


KNOWN_TRACE_HEADERS, KNOWN_TRACE_PREFIXES = _every_format_fields()
"""Trace headers (and header families) of every format we know, stripped from upstream
requests whatever the configured formats: a stale one next to the gateway's fresh headers
would fork the trace, and unfiltered baggage would bypass the baggage rules."""

_SETTER: Final = _propagation.DictSetter()
_CLIENT: Final = _span.SpanKind.CLIENT
_ERROR: Final = _span.StatusCode.ERROR


class Fields:
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


@final
class UnrecordedTrace:
    """The :class:`~gatetrace.gateway.proxy.UpstreamObserver` of a request whose trace
    the sampler dropped: no span objects at all, only the context to propagate (with
    ``sampled=0``) and the trace id for the response header."""

    __slots__ = ("context", "header_name", "propagator", "strip_exact", "strip_prefixes")

    def __init__(
        self,
        context: _spancontext.SpanContext,
        propagator: _propagation.Propagator,
        fields: Fields,
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
        headers.popall(retro.HEADER, None)
        headers[self.header_name] = "%032x" % self.context.trace_id  # noqa: UP031 (ids.format_trace_id, inlined)

    def on_failure(self, error_type: str, exc: BaseException, *, upstream: bool) -> None:
        pass  # nothing records it

    def on_done(self) -> None:
        pass


def _upstream_failed(
    span: _span.Span, error_type: str, exc: BaseException, timestamp_ns: int = 0
) -> None:
    span.set_status(_ERROR, f"upstream: {error_type}")
    span.set_tag("error.type", error_type)
    span.log(_span.exception_event(exc), timestamp_ns or None)


class RequestTrace:
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
        "retro_crumbs",
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
        fields: Fields,
        header_name: str,
    ) -> None:
        self.active = active
        self.method = method
        self.mono_start = time.perf_counter_ns()
        self.server = server
        self.trace_id = "%032x" % server.context.trace_id  # noqa: UP031 (trace_id_hex, inlined)
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
        if it is upgraded (most such traces are discarded, so most never are); see
        :meth:`defer` for the fields only such a trace uses."""
        self.request: web.Request | None = None
        self.upstream_status = 0
        """The upstream's answer (0: none, or the gateway's own 502/504 after a failure)."""
        self.retro_crumbs: Sequence[str] = ()
        """Breadcrumbs of the hops that buffered this pending trace (:mod:`.retro`)."""

    def defer(self, request: web.Request, route: routes.Route | None) -> None:
        """The trace awaits its priority decision: keep what its attributes and its client
        span need, should it be kept (a sampled trace never sets these)."""
        self.deferred = True
        self.request = request
        self.route = route
        self.url = ""
        # the client span's id and times, built only if the trace is kept
        self.client_id = 0
        self.client_start_ns = 0
        self.client_end_ns = 0
        self.failure_exc: BaseException | None = None
        self.failure_ns = 0

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
            self.active.propagator.inject(retro.outgoing(self.active, context), headers, _SETTER)
            return
        server = self.server
        now = server.start_ns + time.perf_counter_ns() - self.mono_start  # now_ns(), inlined
        client = self.active.tracer.start_child(server, self.method, _CLIENT, now)
        self.client = client
        self.client_tags(client, route, url)
        self.active.propagator.inject(client.context, headers, _SETTER)

    def build_deferred_client(self) -> None:
        """The trace was kept: the client span it skipped, as it would have been."""
        route = self.route
        if not self.client_id or route is None:
            return  # no upstream call was made
        client = self.active.tracer.start_child(
            self.server, self.method, _CLIENT, self.client_start_ns, self.client_id
        )
        self.client = client
        self.client_tags(client, route, self.url)
        if self.upstream_status:
            self.client_status(client, self.upstream_status)
        if self.upstream_failed and self.failure_exc is not None:
            _upstream_failed(client, self.failure, self.failure_exc, self.failure_ns)
        client.finish(self.client_end_ns or self.now_ns())

    def client_tags(self, client: _span.Span, route: routes.Route, url: str) -> None:
        method = self.method
        block = route.client_blocks.get(method)
        if block is None:  # the first call with this method (at most one per method)
            block = route.client_block(method)
        client.share(block)
        query = url.find("?")
        if query >= 0:  # secret-looking parameter values redacted (url.query rules)
            url = url[: query + 1] + _url_redaction.redact_query(url[query + 1 :])
        recorded = route.upstream_recorded
        if recorded is not route.upstream:  # user:password@ in the upstream URL
            url = recorded + url[len(route.upstream) :]
        client.set_tag("url.full", url)  # cut (and counted) by the span if too long

    def on_response(self, status: int, headers: multidict.CIMultiDict[str]) -> None:
        self.status = status
        self.retro_crumbs = retro.collect(self.active, headers, self.deferred)
        headers[self.header_name] = self.trace_id
        if not self.upstream_failed:
            self.upstream_status = status
            client = self.client
            if client is not None and client.recording:
                self.client_status(client, status)

    @staticmethod
    def client_status(client: _span.Span, status: int) -> None:
        client.set_tag("http.response.status_code", status)
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
                _upstream_failed(span, error_type, exc)

    def on_done(self) -> None:
        client = self.client
        if client is not None:  # now_ns(), inlined
            client.finish(self.server.start_ns + time.perf_counter_ns() - self.mono_start)
        elif self.deferred and self.client_id:
            self.client_end_ns = self.now_ns()

    def now_ns(self) -> int:
        """Wall-clock time on the server span's timeline (its start plus monotonic time
        elapsed), so the client span always nests inside the server span."""
        return self.server.start_ns + time.perf_counter_ns() - self.mono_start
