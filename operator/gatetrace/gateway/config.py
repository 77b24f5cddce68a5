"""The gateway's own configuration file (``gatetrace gateway --config FILE``).

YAML (or JSON) validated by pydantic into frozen models. Keys are camelCase
on the wire (``trustedProxies``, ``stripPrefix``...) and snake_case in
Python; both are accepted. Unknown keys are errors, and every error names
the field path (``routes[1].upstream: ...``) so a typo is found at start-up
rather than by a confused proxy. The ``tracing`` bootstrap document is kept
as a plain mapping here: it is a TracingPolicy spec validated by the policy
layer when it is applied.
"""

import pathlib
import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import alias_generators

from gatetrace.gateway import cpus
from gatetrace.policy import messages as _messages
from gatetrace.policy import yamlsafe as _yamlsafe

__all__ = [
    "DEFAULT_SENSITIVE_HEADERS",
    "AdminConfig",
    "ConfigError",
    "GatewayConfig",
    "MetricsConfig",
    "OtlpReceiverConfig",
    "QueryApiConfig",
    "RouteConfig",
    "load_config",
    "parse_config",
    "split_host_port",
]

DEFAULT_SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "cookie", "set-cookie", "proxy-authorization"}
)
"""Headers never recorded on spans, whatever the configuration says."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PREFIX = re.compile(r"^/[!$&'()*+,;=:@%/0-9A-Za-z._~-]*$")


class ConfigError(ValueError):
    """The gateway config is unreadable or invalid; ``errors`` holds ``(field, message)``."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {loc or '(top level)'}: {msg}" for loc, msg in errors)
        super().__init__(f"invalid gateway config {source}:\n{lines}")


def split_host_port(value: str) -> tuple[str, int]:
    """``"0.0.0.0:8080"`` / ``"[::1]:8080"`` / ``"localhost:0"`` -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {_messages.echo(value)}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"unbalanced brackets in {_messages.echo(value)}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"IPv6 addresses need brackets ([::1]:8080), got {_messages.echo(value)}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be 0-65535, got {_messages.echo(port_text)}")
    if not host:
        raise ValueError(f"empty host in {_messages.echo(value)}")
    return host, int(port_text)


def _check_listen(value: str) -> str:
    split_host_port(value)
    return value


def _check_header(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"not a valid HTTP header name: {_messages.echo(value)}")
    return value


def _check_upstream(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        raise ValueError(
            f"upstream must be an http:// or https:// URL, got {_messages.echo(value)}"
        )
    if not parts.hostname:
        raise ValueError(f"upstream has no host: {_messages.echo(value)}")
    try:
        _ = parts.port
    except ValueError as e:
        raise ValueError(f"upstream has a bad port: {_messages.echo(value)}") from e
    if parts.query or parts.fragment:
        raise ValueError(f"upstream may not have a query or fragment: {_messages.echo(value)}")
    return value.rstrip("/")


ListenAddress = Annotated[str, pydantic.AfterValidator(_check_listen)]
HeaderName = Annotated[str, pydantic.Field(max_length=256), pydantic.AfterValidator(_check_header)]
UpstreamUrl = Annotated[
    str,
    pydantic.Field(max_length=2048, json_schema_extra={"pattern": r"^https?://[^/?#\s]+[^?#\s]*$"}),
    pydantic.AfterValidator(_check_upstream),
]
TimeoutMs = Annotated[int, pydantic.Field(gt=0, le=3_600_000)]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


class AdminConfig(_Model):
    """The admin/query API server (a separate port)."""

    listen: ListenAddress = "127.0.0.1:9901"
    """HOST:PORT the admin API binds. Default 127.0.0.1:9901."""
    token_file: pathlib.Path | None = None
    """File holding the bearer token the admin API requires (surrounding whitespace ignored)."""


class MetricsConfig(_Model):
    """A port of its own for ``/metrics`` (and the probes), so a scraper need not reach
    the admin port. The admin port keeps serving ``/metrics`` too."""

    listen: ListenAddress | None = None
    """HOST:PORT serving ``GET /metrics``, ``/healthz`` and ``/readyz`` without a token.
    Default: none (metrics on the admin port only)."""


class QueryApiConfig(_Model):
    """The read-only query API for Jaeger UI and Grafana's Jaeger data source, which send
    no bearer token. Off by default: whoever reaches this port reads every trace the
    gateway keeps, so guard it with a NetworkPolicy (the chart's ``gateway.queryApi``)."""

    listen: ListenAddress | None = None
    """HOST:PORT serving the query routes (``/api/traces``, ``/api/services``,
    ``/api/dependencies``...) and the trace page, with no token and never an admin route.
    Default: none (the query API is served on the admin port only, behind the token)."""


class ConnectionLimits(_Model):
    """Limits on client connections to the proxy port (slow or idle clients, floods)."""

    head_timeout_ms: TimeoutMs = 10_000
    """A request head (request line and headers) must arrive within this many ms of the
    connection's start or of its first byte after an idle spell; else 408 and close.
    A deadline, so a client trickling one byte a second is cut too. Default 10000."""
    idle_timeout_ms: TimeoutMs = 60_000
    """A keep-alive connection with no request for this long is closed, and so is one
    whose client has not read its answer for this long (a slow reader). Default 60000."""
    max_connections: Annotated[int, pydantic.Field(ge=1, le=1_000_000)] | None = None
    """Client connections open at once; more are answered 503 and closed at once.
    Default: half the process's open-file limit (at least 64)."""


class OtlpReceiverConfig(_Model):
    """The admin port's OTLP/HTTP trace receiver (``POST /v1/traces``): its bounds."""

    enabled: bool = True
    """Serve ``POST /v1/traces`` (with the admin token). Default true."""
    max_body_bytes: Annotated[int, pydantic.Field(ge=1024, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    """Largest request body, as sent and after gzip is undone; 413 beyond, and a gzip body
    is never inflated past it. Default 4 MiB (OTLP/gRPC's usual limit)."""
    max_spans_per_request: Annotated[int, pydantic.Field(ge=1, le=1_000_000)] = 10_000
    """Spans one request may carry; 413 beyond. Default 10000."""
    max_spans_per_second: Annotated[float, pydantic.Field(gt=0, le=10_000_000)] = 10_000
    """Spans ingested per second (a token bucket holding one second's worth, at least one
    request's); a request finding too few tokens is refused whole with 429 and a
    ``Retry-After``. Default 10000."""


class RouteConfig(_Model):
    """One route: requests whose path starts with ``prefix`` go to ``upstream``."""

    name: Annotated[
        str, pydantic.Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    ]
    """Route name: the ``route`` metric label and the ``gatetrace.route`` span tag."""
    prefix: Annotated[
        str, pydantic.Field(max_length=1024, json_schema_extra={"pattern": _PREFIX.pattern})
    ]
    """Path prefix, matched on whole segments (``/api/users`` matches ``/api/users/7``,
    not ``/api/usersx``); the longest matching prefix wins."""
    upstream: UpstreamUrl
    """Base URL of the upstream (``http://users.shop.svc:8080``); the request path is appended."""
    namespace: (
        Annotated[
            str, pydantic.Field(json_schema_extra={"pattern": _DNS_LABEL.pattern, "maxLength": 63})
        ]
        | None
    ) = None
    """Kubernetes namespace of the upstream service (selects namespace sampling overrides)."""
    strip_prefix: bool = False
    """Remove ``prefix`` from the path before it is appended to ``upstream``."""
    connect_timeout_ms: TimeoutMs = 2_000
    """Connecting to the upstream longer than this answers 504. Default 2000."""
    timeout_ms: TimeoutMs = 30_000
    """The upstream silent longer than this (before or between response chunks) answers 504
    (or aborts a response already started). Default 30000."""

    @pydantic.field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                "prefix must be an absolute URL path starting with '/', got "
                + _messages.echo(value)
            )
        return value.rstrip("/") or "/"

    @pydantic.field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not _DNS_LABEL.match(value)):
            raise ValueError(f"not a valid Kubernetes namespace name: {_messages.echo(value)}")
        return value


MAX_WORKERS = 64
"""The most worker processes a gateway runs."""


class GatewayConfig(_Model):
    """The whole gateway configuration file."""

    service: Annotated[str, pydantic.Field(min_length=1, max_length=256)] = "api-gateway"
    """``service.name`` of the gateway's spans."""
    listen: ListenAddress = "0.0.0.0:8080"
    """HOST:PORT the proxy binds. Default 0.0.0.0:8080."""
    admin: AdminConfig = AdminConfig()
    """The admin API server."""
    metrics: MetricsConfig = MetricsConfig()
    """The metrics port (optional)."""
    query_api: QueryApiConfig = QueryApiConfig()
    """The read-only query API port (optional, off by default)."""
    trusted_proxies: list[pydantic.IPvAnyNetwork] = pydantic.Field(default_factory=list)
    """CIDRs (or addresses) of proxies in front of the gateway whose X-Forwarded-For is
    believed. Empty: the socket peer is the client."""
    trace_id_header: HeaderName = "X-Trace-Id"
    """Response header carrying the trace id, so users can find their trace."""
    sensitive_headers: list[HeaderName] = pydantic.Field(default_factory=list)
    """Headers never recorded on spans, in addition to Authorization, Cookie, Set-Cookie
    and Proxy-Authorization."""
    routes: list[RouteConfig] = pydantic.Field(default_factory=list)
    """Routes; the longest matching prefix wins."""
    connections: ConnectionLimits = ConnectionLimits()
    """Client connection limits of the proxy port (each worker process applies them)."""
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    """The event loop of every gateway process: ``auto`` (uvloop when the ``uvloop`` extra
    is installed, as in the image: ~13% fewer instructions a request; else asyncio's),
    ``asyncio`` or ``uvloop`` (refused at start when it is not installed)."""
    workers: Annotated[int, pydantic.Field(ge=1, le=MAX_WORKERS)] | None = None
    """Proxy processes sharing the listen port, under one supervisor process that serves
    the admin, metrics and query ports and applies each tracing config to every worker.
    Default: the CPUs the process may use (its cgroup CPU limit rounded up, its cpuset).
    ``1``: a single process, no supervisor."""
    otlp: OtlpReceiverConfig = OtlpReceiverConfig()
    """The OTLP/HTTP trace receiver on the admin port."""
    swap_grace_ms: TimeoutMs | None = None
    """After a tracing config swap, the old config's reporters wait for the requests that
    started under it to end (their spans go there), at most this long. Default: the
    longest route ``connectTimeoutMs + timeoutMs`` plus 5 s."""
    tracing_file: pathlib.Path | None = None
    """A tracing config file (the operator's ConfigMap), watched and applied on change."""
    tracing: dict[str, Any] | None = None
    """Bootstrap tracing config (TracingPolicy spec schema) used until another is applied."""

    @pydantic.field_validator("sensitive_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @pydantic.model_validator(mode="after")
    def _unique_routes(self) -> Self:
        names: set[str] = set()
        prefixes: dict[str, str] = {}
        for route in self.routes:
            if route.name in names:
                raise ValueError(f"routes: duplicate route name {_messages.echo(route.name)}")
            names.add(route.name)
            if route.prefix in prefixes:
                raise ValueError(
                    f"routes: {_messages.echo(route.name)} and "
                    f"{_messages.echo(prefixes[route.prefix])} have the same "
                    f"prefix {_messages.echo(route.prefix)}"
                )
            prefixes[route.prefix] = route.name
        return self

    @pydantic.model_validator(mode="after")
    def _distinct_ports(self) -> Self:
        seen: list[tuple[str, str, int]] = []
        for field, listen in self.listen_addresses().items():
            host, port = split_host_port(listen)
            for other, other_host, other_port in seen:
                # port 0 is an ephemeral port each; a wildcard host overlaps every host
                if port and port == other_port and _overlap(host, other_host):
                    raise ValueError(f"{field} and {other} both listen on {listen}")
            seen.append((field, host, port))
        return self

    def listen_addresses(self) -> dict[str, str]:
        """Each configured listen address by its field path (``admin.listen``...)."""
        found = {"listen": self.listen, "admin.listen": self.admin.listen}
        if self.metrics.listen is not None:
            found["metrics.listen"] = self.metrics.listen
        if self.query_api.listen is not None:
            found["queryApi.listen"] = self.query_api.listen
        return found

    @property
    def worker_count(self) -> int:
        """:attr:`workers`, or the CPUs this process may use."""
        if self.workers is not None:
            return self.workers
        return min(MAX_WORKERS, cpus.available_cpus())

    @property
    def longest_request_seconds(self) -> float:
        """The longest a proxied request can last before a route's timeouts answer 504:
        the largest ``connectTimeoutMs + timeoutMs`` (30 s + 2 s without routes)."""
        longest = max((r.connect_timeout_ms + r.timeout_ms for r in self.routes), default=32_000)
        return longest / 1000

    @property
    def swap_grace_seconds(self) -> float:
        """:attr:`swap_grace_ms` or its default, in seconds."""
        if self.swap_grace_ms is not None:
            return self.swap_grace_ms / 1000
        longest = max((r.connect_timeout_ms + r.timeout_ms for r in self.routes), default=30_000)
        return longest / 1000 + 5.0

    @property
    def recorded_header_blocklist(self) -> frozenset[str]:
        """Lowercase names of headers never recorded on spans."""
        return DEFAULT_SENSITIVE_HEADERS | frozenset(self.sensitive_headers)


_WILDCARDS = frozenset({"0.0.0.0", "::", "*"})


def _overlap(host: str, other: str) -> bool:
    return host == other or host in _WILDCARDS or other in _WILDCARDS


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def parse_config(document: Any, source: str = "<config>") -> GatewayConfig:
    """Validate a parsed YAML/JSON document; raise :class:`ConfigError` naming each bad field."""
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(source, [("", f"expected a mapping, got {type(document).__name__}")])
    try:
        return GatewayConfig.model_validate(document)
    except pydantic.ValidationError as e:
        errors = [(_loc(err["loc"]), err["msg"]) for err in e.errors(include_url=False)]
        raise ConfigError(source, errors) from e


def load_config(path: str | pathlib.Path) -> GatewayConfig:
    """Read and validate the gateway config file at ``path``."""
    source = str(path)
    try:
        text = pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(source, [("", f"cannot read file: {e.strerror or e}")]) from e
    try:
        document = _yamlsafe.load_one(text)
    except _yamlsafe.YamlError as e:
        raise ConfigError(source, [("", f"not valid YAML: {e}")]) from e
    return parse_config(document, source)
