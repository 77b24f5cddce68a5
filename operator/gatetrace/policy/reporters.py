"""The ``spec.reporters`` models: where finished spans are sent.

A reporter is a tagged union on ``type``.  The reporters that send to an
endpoint (``jaegerCollector``, ``zipkin``, ``otlpHttp``, ``otlpGrpc``) share
headers, gzip and TLS; headers may come from a Secret (``headersFrom``) and TLS
material too (``tls.secretName``): the operator resolves both into the
effective config (``headers``; ``tls.ca``/``cert``/``key``), and
:mod:`gatetrace.policy.redaction` hides header values and keys from human
renderings.
"""

import urllib.parse
from typing import Annotated, Any, Literal, Self

import pydantic

from gatetrace.policy import wire
from gatetrace.runtime.reporting import tls as _tls


class JaegerAgentReporter(wire.WireModel):
    """Jaeger agent over UDP (thrift compact, emitBatch)."""

    type: Literal["jaegerAgent"] = "jaegerAgent"
    """Reporter type: jaegerAgent."""
    host: Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=r"^[^\s/:]+$")]
    """jaegerAgent: host name or IP address of the agent."""
    port: Annotated[int, pydantic.Field(ge=1, le=65535)] = 6831
    """jaegerAgent: UDP port of the agent. Default 6831."""


class SecretRef(wire.WireModel):
    """A Secret in the policy's namespace whose keys become header names."""

    secret_name: wire.DnsLabel
    """Name of the Secret; each key/value becomes a request header."""


def _check_pem(value: object) -> object:
    if isinstance(value, str) and "-----BEGIN " not in value:
        raise ValueError("not PEM text (no -----BEGIN ... line)")  # never echoed: may be a key
    return value


def _pem_field(max_length: int) -> Any:
    return pydantic.Field(min_length=1, max_length=max_length)


PemBundle = Annotated[str, _pem_field(262_144), pydantic.AfterValidator(_check_pem)]
"""PEM certificates (a CA bundle, a certificate chain), at most 256 KiB."""
PemKey = Annotated[str, _pem_field(65_536), pydantic.AfterValidator(_check_pem)]
"""A PEM private key."""
FilePath = Annotated[str, pydantic.Field(min_length=2, max_length=4096, pattern=r"^/[^\x00]*$")]
"""An absolute path on the gateway's filesystem."""
ServerName = Annotated[
    str,
    pydantic.Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$",
    ),
]
"""A DNS name."""

_TLS_RULES: tuple[tuple[str, str], ...] = (
    ("!has(self.ca) || !has(self.caFile)", "give ca or caFile, not both"),
    ("!has(self.cert) || !has(self.certFile)", "give cert or certFile, not both"),
    ("!has(self.key) || !has(self.keyFile)", "give key or keyFile, not both"),
    (
        "(has(self.cert) || has(self.certFile)) == (has(self.key) || has(self.keyFile))",
        "a client certificate needs its key: give cert (or certFile) with key (or keyFile)",
    ),
    (
        "!has(self.insecureSkipVerify) || !self.insecureSkipVerify"
        " || !(has(self.ca) || has(self.caFile))",
        "insecureSkipVerify trusts any server: it takes no ca or caFile",
    ),
)


class ReporterTls(wire.WireModel):
    """TLS towards an https endpoint: the CAs to trust (default: the system's), a client
    certificate for mutual TLS, the name to verify. PEM material comes from files on the
    gateway (caFile, certFile, keyFile) or from a Secret through the operator (secretName)."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.cel(*_TLS_RULES))

    ca_file: FilePath | None = None
    """Absolute path of a PEM bundle of the CAs that sign the collector's certificate."""
    cert_file: FilePath | None = None
    """Absolute path of the PEM client certificate (chain) for mutual TLS; needs keyFile."""
    key_file: FilePath | None = None
    """Absolute path of the PEM private key of certFile."""
    secret_name: wire.DnsLabel | None = None
    """A Secret in the policy's namespace, labelled gatetrace.dev/reporter-credentials:
    "true", in the kubernetes.io/tls layout (as cert-manager writes it): its ca.crt,
    tls.crt and tls.key entries become ca, cert and key (each one that is present)."""
    ca: PemBundle | None = None
    """PEM CA bundle as text (filled from secretName by the operator)."""
    cert: PemBundle | None = None
    """PEM client certificate as text (filled from secretName by the operator)."""
    key: PemKey | None = None
    """PEM private key as text (filled from secretName by the operator; redacted in every
    human rendering). Keep keys in a Secret rather than in a policy."""
    server_name: ServerName | None = None
    """The name the collector's certificate must carry, when it is not the endpoint's host
    (a collector reached by IP address or through a tunnel)."""
    insecure_skip_verify: bool = False
    """Accept any server certificate (still encrypted, but open to anyone on the path).
    For tests only; not supported by otlpGrpc. Default false."""

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Self:
        for inline, path, name in (
            (self.ca, self.ca_file, "ca"),
            (self.cert, self.cert_file, "cert"),
            (self.key, self.key_file, "key"),
        ):
            if inline is not None and path is not None:
                raise ValueError(f"give {name} or {name}File, not both")
        has_cert = self.cert is not None or self.cert_file is not None
        has_key = self.key is not None or self.key_file is not None
        if has_cert != has_key:
            raise ValueError(_TLS_RULES[3][1])
        if self.insecure_skip_verify and (self.ca is not None or self.ca_file is not None):
            raise ValueError(_TLS_RULES[4][1])
        return self


_TLS_NEEDS_HTTPS = (
    "!has(self.tls) || !has(self.endpoint) || self.endpoint.startsWith('https://')",
    "tls needs an https:// endpoint",
)


class SendingReporter(wire.WireModel):
    """Base of the reporters that send to an endpoint over HTTP (or gRPC): the fields
    they all have (endpoint, headers, headersFrom, gzip, tls)."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.cel(_TLS_NEEDS_HTTPS))

    type: str
    endpoint: wire.HttpUrl
    """jaegerCollector, zipkin, otlpHttp: full http(s) URL spans are POSTed to;
    otlpGrpc: http(s)://host:port (no path; port 4317 by default)."""
    headers: Annotated[dict[wire.HeaderName, wire.HeaderValue], pydantic.Field(max_length=32)] = (
        pydantic.Field(default_factory=dict)
    )
    """Extra request headers (gRPC metadata for otlpGrpc); values are redacted in every
    human rendering."""
    headers_from: SecretRef | None = None
    """A Secret whose entries are added to the headers by the operator."""
    gzip: bool = True
    """gzip request bodies. Default true (jaegerCollector: false)."""
    tls: ReporterTls | None = None
    """TLS settings of an https endpoint (without them: verified against the system's CAs)."""

    @pydantic.model_validator(mode="after")
    def _tls_needs_https(self) -> Self:
        if self.tls is not None and not self.endpoint.startswith("https://"):
            raise ValueError(_TLS_NEEDS_HTTPS[1])
        return self


class JaegerCollectorReporter(SendingReporter):
    """Jaeger collector over HTTP (thrift binary, POST /api/traces)."""

    type: Literal["jaegerCollector"] = "jaegerCollector"
    """Reporter type: jaegerCollector."""
    gzip: bool = False
    """gzip request bodies. Default true (jaegerCollector: false)."""


class ZipkinReporter(SendingReporter):
    """Zipkin v2 JSON over HTTP (POST /api/v2/spans)."""

    type: Literal["zipkin"] = "zipkin"
    """Reporter type: zipkin."""


class OtlpHttpReporter(SendingReporter):
    """OpenTelemetry OTLP/HTTP protobuf (POST /v1/traces)."""

    type: Literal["otlpHttp"] = "otlpHttp"
    """Reporter type: otlpHttp."""


_GRPC_RULES = (
    _TLS_NEEDS_HTTPS,
    (
        "!has(self.endpoint) || self.endpoint.matches('^https?://[^/?#]+/?$')",
        "an otlpGrpc endpoint has no path: give http(s)://host:port",
    ),
    (
        "!has(self.tls) || !has(self.tls.insecureSkipVerify) || !self.tls.insecureSkipVerify",
        "otlpGrpc does not support tls.insecureSkipVerify: give the collector's CA",
    ),
)


class OtlpGrpcReporter(SendingReporter):
    """OpenTelemetry OTLP over gRPC (TraceService/Export, port 4317); needs the grpc
    extra (pip install 'gatetrace[grpc]')."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.cel(*_GRPC_RULES))

    type: Literal["otlpGrpc"] = "otlpGrpc"
    """Reporter type: otlpGrpc."""

    @pydantic.model_validator(mode="after")
    def _grpc_endpoint(self) -> Self:
        parts = urllib.parse.urlsplit(self.endpoint)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(_GRPC_RULES[1][1])
        if self.tls is not None and self.tls.insecure_skip_verify:
            raise ValueError(_GRPC_RULES[2][1])
        return self


class MemoryReporter(wire.WireModel):
    """The gateway's in-memory span store, read by the query API."""

    type: Literal["memory"] = "memory"
    """Reporter type: memory."""
    max_spans: Annotated[int, pydantic.Field(ge=1, le=10_000_000)] = 100_000
    """memory: spans kept before the oldest are evicted. Default 100000."""
    max_age_seconds: Annotated[int, pydantic.Field(ge=1, le=604_800)] = 3600
    """memory: spans older than this are evicted. Default 3600."""
    max_bytes: Annotated[int, pydantic.Field(ge=1_048_576, le=68_719_476_736)] = 268_435_456
    """memory: estimated bytes of the spans kept (their tags and logs hold client-controlled
    strings); the oldest are evicted past it. One trace keeps at most a sixteenth of it.
    Default 268435456 (256 MiB)."""
    max_spans_per_trace: Annotated[int, pydantic.Field(ge=1, le=1_000_000)] = 5000
    """memory: spans kept per trace; more spans of a full trace are dropped (one client
    reusing one traceparent cannot grow a trace without end). Default 5000."""


class LogReporter(wire.WireModel):
    """One log line per finished span (for debugging)."""

    type: Literal["log"] = "log"
    """Reporter type: log."""


Reporter = Annotated[
    JaegerAgentReporter
    | JaegerCollectorReporter
    | ZipkinReporter
    | OtlpHttpReporter
    | OtlpGrpcReporter
    | MemoryReporter
    | LogReporter,
    pydantic.Field(discriminator="type"),
]
"""Any reporter, selected by its ``type``."""


def reporter_identity(reporter: wire.WireModel) -> tuple[str, str]:
    """What makes two reporters the same destination (a duplicate): type plus address."""
    match reporter:
        case JaegerAgentReporter(host=host, port=port):
            return ("jaegerAgent", f"{host.lower()}:{port}")
        case JaegerCollectorReporter(endpoint=url) | ZipkinReporter(endpoint=url):
            return (str(getattr(reporter, "type", "")), url)
        case OtlpHttpReporter(endpoint=url) | OtlpGrpcReporter(endpoint=url):
            return (str(getattr(reporter, "type", "")), url)
        case _:
            return (str(getattr(reporter, "type", "")), "")


def tls_settings(tls: ReporterTls | None) -> _tls.TlsSettings | None:
    """The runtime's TLS settings for a reporter's ``tls`` (None stays None)."""
    if tls is None:
        return None
    return _tls.TlsSettings(
        ca_file=tls.ca_file,
        ca_pem=tls.ca,
        cert_file=tls.cert_file,
        cert_pem=tls.cert,
        key_file=tls.key_file,
        key_pem=tls.key,
        server_name=tls.server_name,
        insecure_skip_verify=tls.insecure_skip_verify,
    )


def default_reporters() -> list[Reporter]:
    """Safe default: keep spans in memory only, so nothing leaves the pod."""
    return [MemoryReporter()]
