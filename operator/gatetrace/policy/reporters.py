"""The ``spec.reporters`` models: where finished spans are sent.

A reporter is a tagged union on ``type``.  ``otlpHttp`` may take headers from
a Secret (``headersFrom``); the operator resolves the Secret into ``headers``
of the effective config, and :mod:`gatetrace.policy.redaction` hides every header
value from human renderings.
"""

from typing import Annotated, Literal

import pydantic

from gatetrace.policy import wire


class JaegerAgentReporter(wire.WireModel):
    """Jaeger agent over UDP (thrift compact, emitBatch)."""

    type: Literal["jaegerAgent"] = "jaegerAgent"
    """Reporter type: jaegerAgent."""
    host: Annotated[str, pydantic.Field(min_length=1, max_length=253, pattern=r"^[^\s/:]+$")]
    """jaegerAgent: host name or IP address of the agent."""
    port: Annotated[int, pydantic.Field(ge=1, le=65535)] = 6831
    """jaegerAgent: UDP port of the agent. Default 6831."""


class JaegerCollectorReporter(wire.WireModel):
    """Jaeger collector over HTTP (thrift binary, POST /api/traces)."""

    type: Literal["jaegerCollector"] = "jaegerCollector"
    """Reporter type: jaegerCollector."""
    endpoint: wire.HttpUrl
    """jaegerCollector, zipkin, otlpHttp: full http(s) URL spans are POSTed to."""


class ZipkinReporter(wire.WireModel):
    """Zipkin v2 JSON over HTTP (POST /api/v2/spans)."""

    type: Literal["zipkin"] = "zipkin"
    """Reporter type: zipkin."""
    endpoint: wire.HttpUrl
    """jaegerCollector, zipkin, otlpHttp: full http(s) URL spans are POSTed to."""
    gzip: bool = True
    """zipkin, otlpHttp: gzip request bodies. Default true."""


class SecretRef(wire.WireModel):
    """A Secret in the policy's namespace whose keys become header names."""

    secret_name: wire.DnsLabel
    """Name of the Secret; each key/value becomes a request header."""


class OtlpHttpReporter(wire.WireModel):
    """OpenTelemetry OTLP/HTTP protobuf (POST /v1/traces)."""

    type: Literal["otlpHttp"] = "otlpHttp"
    """Reporter type: otlpHttp."""
    endpoint: wire.HttpUrl
    """jaegerCollector, zipkin, otlpHttp: full http(s) URL spans are POSTed to."""
    headers: Annotated[dict[wire.HeaderName, wire.HeaderValue], pydantic.Field(max_length=32)] = (
        pydantic.Field(default_factory=dict)
    )
    """otlpHttp: extra request headers; values are redacted in every human rendering."""
    headers_from: SecretRef | None = None
    """otlpHttp: a Secret whose entries are added to the headers by the operator."""
    gzip: bool = True
    """zipkin, otlpHttp: gzip request bodies. Default true."""


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
        case OtlpHttpReporter(endpoint=url):
            return ("otlpHttp", url)
        case _:
            return (str(getattr(reporter, "type", "")), "")


def default_reporters() -> list[Reporter]:
    """Safe default: keep spans in memory only, so nothing leaves the pod."""
    return [MemoryReporter()]
