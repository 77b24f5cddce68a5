"""Route matching: the longest path prefix wins, on whole path segments.

A prefix ``/api/users`` matches ``/api/users``, ``/api/users/`` and
``/api/users/7`` but not ``/api/usersx``; ``/`` matches everything. Matching
is done on the raw (percent-encoded) path, so an encoded slash or letter
never sneaks a request into another route. Lookup walks the path's segments
through a dict: cost grows with path depth, not with the number of routes.

:meth:`RouteTable.resolve` is what the proxy routes by: the path without
dot-segments (:mod:`.paths`), and refused when a ``..`` removed a segment of a
route's prefix, that of the route the path was sent to (``/echo/../strip/x``
leaves ``/echo``) or that of the route it ends in (``/x/../strip/y`` enters
``/strip`` from outside): a ``..`` may only undo what the client added below a
prefix, so what reaches an upstream is always under its base path.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp
import yarl

from gatetrace.gateway import config as _config
from gatetrace.gateway import paths
from gatetrace.policy import messages as _messages
from gatetrace.runtime import span as _span
from gatetrace.runtime import url_redaction as _url_redaction

__all__ = ["HTTP_METHODS", "Route", "RouteTable"]

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
"""The methods spans name as they are (OTel HTTP semconv); any other is ``_OTHER``."""


@dataclass(frozen=True, slots=True)
class Route:
    """A configured route, with what the proxy precomputes for it."""

    name: str
    prefix: str
    upstream: str
    """Upstream base URL without a trailing slash (``http://users:8080`` or ``.../base``)."""
    namespace: str | None
    strip_prefix: bool
    timeout: aiohttp.ClientTimeout
    span_name_suffix: str
    """`` /api/users``: appended to the method to name the server span (OTel HTTP semconv)."""
    upstream_host: str
    upstream_port: int
    upstream_scheme: str
    upstream_recorded: str
    """``upstream`` as spans record it (``url.full``): credentials in it redacted; the same
    object as ``upstream`` when it has none."""
    span_names: dict[str, str] = field(default_factory=dict, compare=False)
    """Method (each of :data:`HTTP_METHODS` and ``_OTHER``) -> the server span's name:
    the same string for every request (no concatenation; encoders cache by it)."""
    client_blocks: dict[str, _span.TagBlock] = field(default_factory=dict, compare=False)
    """Method -> the tags every client span of this route shares (filled as methods come:
    at most one per known method and ``_OTHER``)."""

    def __post_init__(self) -> None:
        for method in (*HTTP_METHODS, "_OTHER"):
            self.span_names[method] = method + self.span_name_suffix

    def client_block(self, method: str) -> _span.TagBlock:
        """The client span tags of a call to this route's upstream that do not depend on
        the request: method, upstream address and port, route (and namespace)."""
        items: list[tuple[str, _span.TagValue]] = [
            ("http.request.method", method),
            ("server.address", self.upstream_host),
            ("server.port", self.upstream_port),
            ("gatetrace.route", self.name),
        ]
        if self.namespace is not None:
            items.append(("gatetrace.upstream.namespace", self.namespace))
        block = self.client_blocks[method] = _span.TagBlock(items)
        return block

    @property
    def prefix_depth(self) -> int:
        """Segments in ``prefix`` (0 for ``/``)."""
        return 0 if self.prefix == "/" else self.prefix.count("/")

    @classmethod
    def from_config(cls, route: _config.RouteConfig) -> "Route":
        url = yarl.URL(route.upstream)
        if url.host is None or url.port is None:  # the config model checked it already
            raise ValueError(f"routes: {route.name!r} upstream {route.upstream!r} has no host")
        upstream = route.upstream.rstrip("/")
        return cls(
            name=route.name,
            prefix=route.prefix,
            upstream=upstream,
            namespace=route.namespace,
            strip_prefix=route.strip_prefix,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=route.connect_timeout_ms / 1000,
                sock_read=route.timeout_ms / 1000,
            ),
            span_name_suffix=f" {route.prefix}",
            upstream_host=url.host,
            upstream_port=url.port,
            upstream_scheme=url.scheme,
            upstream_recorded=_url_redaction.redact_userinfo(upstream),
        )

    def upstream_url(self, raw_path: str, raw_query: str) -> str:
        """The upstream URL (still percent-encoded) for a request's raw path and query."""
        if self.strip_prefix and self.prefix != "/":
            raw_path = raw_path[len(self.prefix) :]
            if not raw_path.startswith("/"):
                raw_path = "/" + raw_path
        if raw_query:
            return f"{self.upstream}{raw_path}?{raw_query}"
        return self.upstream + raw_path


class RouteTable:
    """Longest-prefix lookup over a set of routes."""

    __slots__ = ("_by_prefix", "_root", "routes")

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._by_prefix = {r.prefix: r for r in self.routes if r.prefix != "/"}
        self._root = next((r for r in self.routes if r.prefix == "/"), None)

    @classmethod
    def from_config(cls, routes: Iterable[_config.RouteConfig]) -> "RouteTable":
        return cls(Route.from_config(r) for r in routes)

    def match(self, raw_path: str) -> Route | None:
        """The route with the longest prefix matching ``raw_path``, or None."""
        by_prefix = self._by_prefix
        route = by_prefix.get(raw_path)
        if route is not None:
            return route
        path = raw_path
        while True:
            cut = path.rfind("/")
            if cut <= 0:
                return self._root
            path = path[:cut]
            route = by_prefix.get(path)
            if route is not None:
                return route

    def resolve(self, raw_path: str) -> tuple[str, Route | None]:
        """The path without dot-segments and the route it matches, or
        :class:`~gatetrace.gateway.paths.PathRefusedError` saying why it cannot be routed."""
        if paths.plain(raw_path):  # nearly every request
            return raw_path, self.match(raw_path)
        normalized = paths.normalize(raw_path)
        path = normalized.path
        route = self.match(path)
        if normalized.floor != paths.NO_CLIMB:
            for climbed in (self.match(raw_path), route):
                if climbed is not None and normalized.floor < climbed.prefix_depth:
                    raise paths.PathRefusedError(
                        f"the path climbs above the prefix {_messages.echo(climbed.prefix)} "
                        f"of route {_messages.echo(climbed.name)} with '..' segments"
                    )
        return path, route
