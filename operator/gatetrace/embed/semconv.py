"""OpenTelemetry HTTP semantic conventions for a service's server and client spans.

Stable attribute names as the gateway writes them: ``http.request.method`` (``_OTHER`` plus
``http.request.method_original`` for an unknown method), ``url.path``, ``url.scheme``,
``http.route``, ``server.address``/``server.port``, ``network.peer.address``,
``user_agent.original``, ``http.response.status_code``, ``url.query`` (server) and
``url.full`` (client, credentials as ``REDACTED:REDACTED@``) with secret-looking parameter
values redacted (:mod:`gatetrace.runtime.url_redaction`), ``error.type``. Server spans are errors on
5xx only; client spans on 4xx and 5xx.
Headers are never recorded.
"""

import sys
import urllib.parse
from typing import Final, NamedTuple

from gatetrace.runtime import span as _span
from gatetrace.runtime import url_redaction as _url_redaction

__all__ = [
    "KNOWN_METHODS",
    "ClientRequest",
    "ServerRequest",
    "client_name",
    "client_status",
    "server_name",
    "server_status",
]

KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_ERROR: Final = _span.StatusCode.ERROR
_RECORD_BYTES: Final = 120
"""A request record beyond its strings: the tuple and its slots."""


def _method(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


def server_name(method: str, route: str | None) -> str:
    """``{METHOD} {route}``, or the method alone when the route template is unknown."""
    known = _method(method)
    name = "HTTP" if known == "_OTHER" else known
    return f"{name} {route}" if route else name


def client_name(method: str) -> str:
    """The method alone (a client knows no route template)."""
    known = _method(method)
    return "HTTP" if known == "_OTHER" else known


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


class ServerRequest(NamedTuple):
    """What a SERVER span's request attributes are made of; written at once for a recorded
    trace, or kept with a retro-buffered span and written only if the trace is kept."""

    method: str
    path: str
    scheme: str = "http"
    route: str | None = None
    host: str | None = None
    peer: str | None = None
    user_agent: str | None = None
    protocol_version: str | None = None
    query: str = ""
    """The raw query string, without ``?``."""

    def write(self, tags: dict[str, _span.TagValue], limit: int) -> None:
        """The attributes into ``tags`` (string values cut to ``limit`` characters)."""
        known = _method(self.method)
        tags["http.request.method"] = known
        if known == "_OTHER":
            tags["http.request.method_original"] = _cut(self.method, limit)
        tags["url.path"] = _cut(self.path, limit)
        if self.query:
            tags["url.query"] = _cut(_url_redaction.redact_query(self.query), limit)
        tags["url.scheme"] = self.scheme
        if self.route:
            tags["http.route"] = _cut(self.route, limit)
        if self.protocol_version:
            tags["network.protocol.version"] = self.protocol_version
        host = self.host
        if host:
            address, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
            if address and port.isdigit() and len(port) <= 5:
                tags["server.address"] = _cut(address.strip("[]"), limit)
                tags["server.port"] = int(port)
            else:
                tags["server.address"] = _cut(host.strip("[]"), limit)
        if self.peer:
            tags["network.peer.address"] = self.peer
        if self.user_agent:
            tags["user_agent.original"] = _cut(self.user_agent, limit)

    def retained_bytes(self) -> int:
        """What keeping this record alive costs (its strings as CPython holds them)."""
        size = _RECORD_BYTES + sys.getsizeof(self.method) + sys.getsizeof(self.path)
        for value in (self.route, self.host, self.peer, self.user_agent, self.query):
            if value:
                size += sys.getsizeof(value)
        return size  # scheme and protocol version: short strings shared by every request


def server_status(span: _span.Span, status: int) -> None:
    """``http.response.status_code``; 5xx marks the span failed (``error.type``)."""
    span.set_tag("http.response.status_code", status)
    if status >= 500:
        span.set_status(_ERROR, f"HTTP {status}")
        span.set_tag("error.type", str(status))


class ClientRequest(NamedTuple):
    """What a CLIENT span's request attributes are made of (see :class:`ServerRequest`)."""

    method: str
    url: str

    def write(self, tags: dict[str, _span.TagValue], limit: int) -> None:
        """``http.request.method``, ``url.full`` with credentials redacted and secret-looking
        query values redacted, ``server.address``/``server.port``."""
        known = _method(self.method)
        tags["http.request.method"] = known
        if known == "_OTHER":
            tags["http.request.method_original"] = _cut(self.method, limit)
        parts = urllib.parse.urlsplit(self.url)
        _userinfo, at, host = parts.netloc.rpartition("@")
        netloc = _url_redaction.REDACTED_USERINFO + host if at else host
        query = _url_redaction.redact_query(parts.query)
        full = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
        tags["url.full"] = _cut(full, limit)
        if parts.hostname:
            tags["server.address"] = _cut(parts.hostname, limit)
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            port = {"http": 80, "https": 443}.get(parts.scheme)
        if port is not None:
            tags["server.port"] = port

    def retained_bytes(self) -> int:
        return sys.getsizeof(self.method) + sys.getsizeof(self.url) + _RECORD_BYTES


def client_status(span: _span.Span, status: int) -> None:
    """``http.response.status_code``; 4xx and 5xx mark a client span failed."""
    span.set_tag("http.response.status_code", status)
    if status >= 400:
        span.set_status(_ERROR, f"HTTP {status}")
        span.set_tag("error.type", str(status))
