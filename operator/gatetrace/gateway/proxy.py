"""The streaming reverse proxy handler.

One :class:`Proxy` per proxy app: it owns one :class:`aiohttp.ClientSession`
(a pooled, keep-alive :class:`aiohttp.TCPConnector`, no cookie jar, no
automatic decompression or default headers, redirects not followed) and
answers every request by matching a route and streaming the request body to
the upstream and the response body back, chunk by chunk: nothing is buffered
whole. Hop-by-hop headers (``Connection`` and the headers it names,
``Keep-Alive``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``,
``Proxy-*``) are dropped both ways; ``X-Forwarded-For`` is appended to,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` set.

Failures map to statuses: no route 404; connecting or talking to the upstream
failed 502; the upstream silent too long 504. Once the response has started
a failure can only abort the client connection (a truncated body, never a
seemingly complete one).

Tracing is not done here: the tracing middleware puts an
:class:`UpstreamObserver` on the request, which the proxy tells about the
upstream call (and which injects trace headers). Without one the proxy does
no tracing work at all.
"""

import time
from collections.abc import AsyncIterator, Sequence
from typing import Final, Protocol

import aiohttp
import multidict
import yarl
from aiohttp import hdrs, web

from gatetrace.gateway import clientip, paths, retro, routes
from gatetrace.gateway import connections as _connections
from gatetrace.policy import messages as _messages
from gatetrace.runtime import metrics

__all__ = [
    "HOP_BY_HOP",
    "MATCHED_ROUTE",
    "NO_ROUTE",
    "OBSERVER",
    "PATH_REFUSED",
    "REQUEST_PATH",
    "NoRoute",
    "Proxy",
    "UpstreamObserver",
    "request_path",
    "response_headers",
]

HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Headers that concern one connection only (RFC 9110 7.6.1), plus any ``proxy-*``."""

# Request headers never copied upstream: hop-by-hop ones, Host (aiohttp writes the
# upstream's), Expect (the gateway answers 100-continue itself), the forwarding
# headers the proxy rewrites and a client's retro breadcrumbs (never followed).
_REQUEST_DROP: Final = HOP_BY_HOP | {
    "host",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    retro.HEADER,
}


class UpstreamObserver(Protocol):
    """What the tracing middleware learns about (and adds to) the upstream call."""

    strip_exact: frozenset[str]
    """Lowercase request header names never forwarded (stale incoming trace headers)."""
    strip_prefixes: tuple[str, ...]
    """Lowercase header name prefixes never forwarded (``uberctx-``...)."""

    def on_request(
        self, route: routes.Route, url: str, headers: multidict.CIMultiDict[str]
    ) -> None:
        """The upstream request is about to be sent: start a span, inject headers."""

    def on_response(self, status: int, headers: multidict.CIMultiDict[str]) -> None:
        """Called with the status and headers about to be sent to the client."""

    def on_failure(self, error_type: str, exc: BaseException, *, upstream: bool) -> None:
        """The upstream (``upstream=True``) or the client connection failed."""

    def on_done(self) -> None:
        """The upstream exchange is over (body fully relayed, or failed)."""


class NoRoute:
    """Marker stored in :data:`MATCHED_ROUTE` when no route matched."""


NO_ROUTE: Final = NoRoute()
"""The one :class:`NoRoute` instance."""

OBSERVER: Final = web.RequestKey("gatetrace_upstream_observer", UpstreamObserver)
"""Where the tracing middleware leaves its observer for the proxy."""
MATCHED_ROUTE: Final = web.RequestKey[routes.Route | NoRoute]("gatetrace_matched_route")
"""The route the middleware already matched (saves matching twice)."""
REQUEST_PATH: Final = web.RequestKey[str]("gatetrace_request_path")
"""The raw path without dot-segments ("" when it is refused)."""
PATH_REFUSED: Final = web.RequestKey[str]("gatetrace_path_refused")
"""Why the request path is refused (set when :data:`REQUEST_PATH` is "")."""


def request_path(request: web.Request, table: routes.RouteTable) -> str | None:
    """The raw path the request is routed and forwarded by: dot-segments removed
    (:meth:`.routes.RouteTable.resolve`); None when it is refused (answered 400, the
    reason in :data:`PATH_REFUSED`)."""
    cached = request.get(REQUEST_PATH)
    if cached is None:
        try:
            cached, _ = table.resolve(request.rel_url.raw_path)
        except paths.PathRefusedError as exc:
            request[PATH_REFUSED] = str(exc)
            cached = ""
        request[REQUEST_PATH] = cached
    return cached or None


def _connection_tokens(headers: multidict.CIMultiDictProxy[str]) -> frozenset[str]:
    values = headers.getall("Connection", ())
    if not values:
        return frozenset()
    return frozenset(t.strip().lower() for v in values for t in v.split(","))


def response_headers(
    headers: multidict.CIMultiDictProxy[str],
) -> multidict.CIMultiDict[str]:
    """The upstream response headers minus the hop-by-hop ones."""
    drop = HOP_BY_HOP | _connection_tokens(headers)
    out: multidict.CIMultiDict[str] = multidict.CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in drop or lower.startswith("proxy-"):
            continue
        out.add(name, value)
    return out


class RelayedResponse(web.StreamResponse):
    """The upstream's response as it came: aiohttp would add ``Content-Type:
    application/octet-stream`` to a body without one and its own ``Server`` header,
    neither of which the upstream sent. (``Date`` is kept: RFC 9110 6.6.1 has a proxy
    add one when the upstream did not.)"""

    __slots__ = ("_not_sent",)

    def __init__(self, *, status: int, reason: str | None, headers: multidict.CIMultiDict[str]):
        super().__init__(status=status, reason=reason, headers=headers)
        self._not_sent = tuple(name for name in _DEFAULTED if name not in headers)

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        for name in self._not_sent:
            self.headers.popall(name, None)


_DEFAULTED: Final = (hdrs.CONTENT_TYPE, hdrs.SERVER)
"""Response headers aiohttp sets when absent, which a relayed response must not get."""


def undecodable_header(headers: multidict.CIMultiDictProxy[str]) -> str | None:
    """The name of the first header whose value was not UTF-8 on the wire, if any.

    aiohttp decodes header bytes as UTF-8 with ``surrogateescape`` and its writer
    drops the escapes, so such a value cannot be forwarded byte for byte: it is
    refused, never silently changed."""
    for name, value in headers.items():
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def _unrelayable(upstream: aiohttp.ClientResponse) -> str | None:
    """Why the upstream's response head cannot be relayed byte for byte, if it cannot:
    a header value or the reason phrase that was not UTF-8 (see :func:`undecodable_header`)."""
    bad = undecodable_header(upstream.headers)
    if bad is not None:
        return f"upstream sent header {_messages.echo(bad, 64)} with a value that is not UTF-8"
    reason = upstream.reason
    if reason is not None and not reason.isascii():
        try:
            reason.encode("utf-8")
        except UnicodeEncodeError:
            return f"upstream sent status {upstream.status} with a reason phrase that is not UTF-8"
    return None


class Proxy:
    """Answers requests by relaying them to the route's upstream."""

    def __init__(
        self,
        table: routes.RouteTable,
        resolver: clientip.ClientIpResolver,
        registry: metrics.Registry,
        *,
        max_connections_per_host: int = 512,
        keepalive_timeout: float = 30.0,
        connections: _connections.ConnectionGuard | None = None,
        latency_buckets: Sequence[float] = metrics.DEFAULT_BUCKETS,
    ) -> None:
        self.connections = connections
        """Client connection limits (the head/idle deadlines pause while a request runs)."""
        self.table = table
        self.resolver = resolver
        self._max_per_host = max_connections_per_host
        self._keepalive = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._requests = registry.counter(
            "gatetrace_gateway_requests", "Requests answered by the proxy", ["route", "code"]
        )
        self._duration = registry.histogram(
            "gatetrace_gateway_request_duration_seconds",
            "Time from request start to the end of the response body",
            ["route"],
            buckets=latency_buckets,
        )
        self._codes: dict[int, str] = {}
        # (strip_exact, strip_prefixes, drop set, prefixes): rebuilt when the config changes
        self._strip_cache: (
            tuple[frozenset[str], tuple[str, ...], frozenset[str], tuple[str, ...]] | None
        ) = None

    # -- lifecycle -------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Proxy.start() was not called (the app is not running)")
        return self._session

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self._max_per_host,
            keepalive_timeout=self._keepalive,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the upstream pool lives as long as the app."""
        await self.start()
        yield
        await self.close()

    # -- the handler -----------------------------------------------------

    def _code(self, status: int) -> str:
        code = self._codes.get(status)
        if code is None:
            code = self._codes[status] = str(status)
        return code

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # the connection is busy (no head/idle deadline) while its request is handled
        guard = self.connections
        conn = guard.open.get(request.transport) if guard is not None else None  # type: ignore[arg-type]
        if conn is not None:
            conn.busy()
        try:
            started = time.perf_counter()
            path = request_path(request, self.table)
            if path is None:
                self._requests.inc(("", "400"))
                reason = request.get(PATH_REFUSED, paths.CLIMBS)
                text = f"bad request path {_messages.echo(request.rel_url.raw_path)}: {reason}\n"
                return web.Response(status=400, text=text)
            bad = undecodable_header(request.headers)
            if bad is not None:
                self._requests.inc(("", "400"))
                return web.Response(
                    status=400,
                    text=f"bad request header {_messages.echo(bad, 64)}: its value is not UTF-8\n",
                )
            matched = request.get(MATCHED_ROUTE)
            if matched is None:
                route = self.table.match(path)
            else:
                route = None if isinstance(matched, NoRoute) else matched
            observer = request.get(OBSERVER)
            if route is None:
                self._requests.inc(("", "404"))
                return web.Response(status=404, text=f"no route for {_messages.echo(path)}\n")
            status = 0
            try:
                response = await self._relay(request, route, observer)
                status = response.status
                return response
            finally:
                name = route.name
                self._requests.inc((name, self._code(status or 499)))
                self._duration.observe(time.perf_counter() - started, (name,))
        finally:
            if conn is not None:
                conn.idle()

    def _request_headers(
        self, request: web.Request, observer: UpstreamObserver | None
    ) -> multidict.CIMultiDict[str]:
        incoming = request.headers
        drop = _REQUEST_DROP
        tokens = _connection_tokens(incoming)
        if tokens:
            drop = drop | tokens
        prefixes: tuple[str, ...] = ("proxy-",)
        if observer is not None:
            cached = self._strip_cache
            if (
                cached is None
                or cached[0] is not observer.strip_exact
                or cached[1] is not (observer.strip_prefixes)
            ):
                cached = self._strip_cache = (
                    observer.strip_exact,
                    observer.strip_prefixes,
                    _REQUEST_DROP | observer.strip_exact,
                    ("proxy-", *observer.strip_prefixes),
                )
            drop = cached[2] | tokens if tokens else cached[2]
            prefixes = cached[3]
        out: multidict.CIMultiDict[str] = multidict.CIMultiDict()
        for name, value in incoming.items():
            lower = name.lower()
            if lower in drop or lower.startswith(prefixes):
                continue
            out.add(name, value)
        peer = request.remote
        forwarded = incoming.getall("X-Forwarded-For", ())
        if peer:
            out["X-Forwarded-For"] = ", ".join((*forwarded, peer)) if forwarded else peer
        elif forwarded:
            out["X-Forwarded-For"] = ", ".join(forwarded)
        proto = incoming.get("X-Forwarded-Proto")
        if proto is None or not self._peer_trusted(peer):
            proto = request.scheme
        out["X-Forwarded-Proto"] = proto
        host = incoming.get("Host")
        if host is not None:
            out["X-Forwarded-Host"] = host
        return out

    def _peer_trusted(self, peer: str | None) -> bool:
        if not peer or not self.resolver.enabled:
            return False
        address = clientip.parse_address(peer)
        return address is not None and self.resolver.is_trusted(address)

    async def _relay(
        self, request: web.Request, route: routes.Route, observer: UpstreamObserver | None
    ) -> web.StreamResponse:
        path = request.get(REQUEST_PATH) or request.rel_url.raw_path
        url = route.upstream_url(path, request.rel_url.raw_query_string)
        headers = self._request_headers(request, observer)
        if observer is not None:
            observer.on_request(route, url, headers)
        body = request.content if request.body_exists else None
        try:
            upstream = await self.session.request(
                request.method,
                yarl.URL(url, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=route.timeout,
            )
        except TimeoutError as exc:
            return self._failed(request, observer, 504, "timeout", exc)
        except Exception as exc:  # any upstream failure is a 502
            return self._failed(request, observer, 502, type(exc).__name__, exc)
        try:
            return await self._stream_back(request, upstream, observer)
        finally:
            upstream.release()
            if observer is not None:
                observer.on_done()

    def _failed(
        self,
        request: web.Request,
        observer: UpstreamObserver | None,
        status: int,
        error_type: str,
        exc: BaseException,
    ) -> web.Response:
        text = "upstream timed out\n" if status == 504 else "upstream unavailable\n"
        out: multidict.CIMultiDict[str] = multidict.CIMultiDict()
        if observer is not None:
            observer.on_failure(error_type, exc, upstream=True)
            observer.on_response(status, out)
            observer.on_done()
        return web.Response(status=status, text=text, headers=out)

    async def _stream_back(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        observer: UpstreamObserver | None,
    ) -> web.StreamResponse:
        problem = _unrelayable(upstream)
        if problem is not None:  # cannot be relayed as it came: a bad gateway answer
            upstream.close()
            failed: multidict.CIMultiDict[str] = multidict.CIMultiDict()
            if observer is not None:
                observer.on_failure("invalid_header", ValueError(problem), upstream=True)
                observer.on_response(502, failed)
            return web.Response(status=502, text=problem + "\n", headers=failed)
        out = response_headers(upstream.headers)
        if observer is not None:
            observer.on_response(upstream.status, out)
        out.popall(retro.HEADER, None)  # breadcrumbs are for the gateway, never the client
        response = RelayedResponse(status=upstream.status, reason=upstream.reason, headers=out)
        try:
            await response.prepare(request)
        except ConnectionError as exc:
            if observer is not None:
                observer.on_failure("client_aborted", exc, upstream=False)
            upstream.close()
            return response
        content = upstream.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                try:
                    await response.write(chunk)
                except ConnectionError as exc:  # the client went away
                    if observer is not None:
                        observer.on_failure("client_aborted", exc, upstream=False)
                    upstream.close()
                    return response
        except TimeoutError as exc:
            return self._abort(request, response, upstream, observer, "timeout", exc)
        except (aiohttp.ClientError, OSError) as exc:
            return self._abort(request, response, upstream, observer, type(exc).__name__, exc)
        await response.write_eof()
        return response

    def _abort(
        self,
        request: web.Request,
        response: web.StreamResponse,
        upstream: aiohttp.ClientResponse,
        observer: UpstreamObserver | None,
        error_type: str,
        exc: BaseException,
    ) -> web.StreamResponse:
        """The upstream failed mid-body: close the client connection so the body is
        visibly truncated (never ended with a final chunk)."""
        if observer is not None:
            observer.on_failure(error_type, exc, upstream=True)
        upstream.close()
        transport = request.transport
        if transport is not None:
            transport.close()
        return response
