"""OpenTelemetry HTTP semantic conventions for a service's server and client spans.

Stable attribute names as the gateway writes them: ``http.request.method`` (``_OTHER`` plus
``http.request.method_original`` for an unknown method), ``url.path``, ``url.scheme``,
``http.route``, ``server.address``/``server.port``, ``network.peer.address``,
``user_agent.original``, ``http.response.status_code``, ``url.full`` (client, without
query), ``error.type``. Server spans are errors on 5xx only; client spans on 4xx and 5xx.
Headers are never recorded.
"""

import urllib.parse
from typing import Final

from gatetrace.runtime import span as _span

__all__ = [
    "KNOWN_METHODS",
    "client_name",
    "client_status",
    "client_tags",
    "method_tags",
    "server_name",
    "server_status",
    "server_tags",
]

KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_ERROR: Final = _span.StatusCode.ERROR


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


def method_tags(span: _span.Span, method: str) -> None:
    known = _method(method)
    span.set_tag("http.request.method", known)
    if known == "_OTHER":
        span.set_tag("http.request.method_original", method)


def server_tags(
    span: _span.Span,
    *,
    method: str,
    path: str,
    scheme: str,
    route: str | None,
    host: str | None,
    peer: str | None,
    user_agent: str | None,
    protocol_version: str | None = None,
) -> None:
    """The request attributes of a SERVER span (no-op when it does not record)."""
    if not span.recording:
        return
    method_tags(span, method)
    span.set_tag("url.path", path)
    span.set_tag("url.scheme", scheme)
    if route:
        span.set_tag("http.route", route)
    if protocol_version:
        span.set_tag("network.protocol.version", protocol_version)
    if host:
        address, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if address and port.isdigit():
            span.set_tag("server.address", address.strip("[]"))
            span.set_tag("server.port", int(port))
        else:
            span.set_tag("server.address", host.strip("[]"))
    if peer:
        span.set_tag("network.peer.address", peer)
    if user_agent:
        span.set_tag("user_agent.original", user_agent)


def server_status(span: _span.Span, status: int) -> None:
    """``http.response.status_code``; 5xx marks the span failed (``error.type``)."""
    span.set_tag("http.response.status_code", status)
    if status >= 500:
        span.set_status(_ERROR, f"HTTP {status}")
        span.set_tag("error.type", str(status))


def client_tags(span: _span.Span, method: str, url: str) -> None:
    """The request attributes of a CLIENT span: method, ``url.full`` without the query
    (it may carry secrets), ``server.address``/``server.port``."""
    if not span.recording:
        return
    method_tags(span, method)
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # never userinfo
    span.set_tag("url.full", urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    if parts.hostname:
        span.set_tag("server.address", parts.hostname)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    if port is not None:
        span.set_tag("server.port", port)


def client_status(span: _span.Span, status: int) -> None:
    """``http.response.status_code``; 4xx and 5xx mark a client span failed."""
    span.set_tag("http.response.status_code", status)
    if status >= 400:
        span.set_status(_ERROR, f"HTTP {status}")
        span.set_tag("error.type", str(status))
