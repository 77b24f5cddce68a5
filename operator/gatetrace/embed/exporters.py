"""Reporter models -> runtime exporters, for :func:`gatetrace.policy.build.build_runtime`.

The policy layer builds the batching processors but may not import aiohttp (the HTTP
transports) nor know where a ``memory`` reporter writes; :func:`factory` is the
:data:`~gatetrace.policy.build.ExporterFactory` a gateway or a kit-managed service hands it.
Exporters open their sockets lazily, so building one for a config that is then rejected
costs nothing.
"""

import logging
from collections.abc import Mapping
from typing import Protocol

from gatetrace.policy import build as _build
from gatetrace.policy import reporters as _reporters
from gatetrace.runtime.reporting import export as _export
from gatetrace.runtime.reporting import jaeger_agent as _jaeger_agent
from gatetrace.runtime.reporting import jaeger_collector as _jaeger_collector
from gatetrace.runtime.reporting import log as _log_reporter
from gatetrace.runtime.reporting import memory as _memory
from gatetrace.runtime.reporting import otlp as _otlp
from gatetrace.runtime.reporting import otlp_grpc as _otlp_grpc
from gatetrace.runtime.reporting import tls as _tls
from gatetrace.runtime.reporting import zipkin as _zipkin

__all__ = ["factory"]

_span_log = logging.getLogger("gatetrace.spans")


class _SenderFactory(Protocol):
    def __call__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        gzip: bool = ...,
        tls: _tls.TlsSettings | None = None,
    ) -> _export.Exporter: ...


_SENDERS: dict[str, _SenderFactory] = {
    "zipkin": _zipkin.ZipkinExporter,
    "otlpHttp": _otlp.OtlpHttpExporter,
    "otlpGrpc": _otlp_grpc.OtlpGrpcExporter,
    "jaegerCollector": _jaeger_collector.JaegerCollectorExporter,
}
"""The exporters of the reporters that send to an endpoint: one signature for all."""


def factory(sink: _memory.SpanSink | None, *, what: str = "gateway") -> _build.ExporterFactory:
    """An exporter factory whose ``memory`` reporter writes into ``sink`` (None: a config
    naming ``memory`` is refused, ``what`` says by whom)."""

    def make(reporter: _reporters.Reporter) -> _export.Exporter:
        match reporter:
            case _reporters.MemoryReporter() if sink is not None:
                return _memory.MemoryExporter(sink)
            case _reporters.LogReporter():
                return _log_reporter.LogExporter(logger=_span_log)
            case _reporters.JaegerAgentReporter(host=host, port=port):
                return _jaeger_agent.JaegerAgentExporter(host, port)
            case _reporters.SendingReporter() if reporter.type in _SENDERS:
                return _SENDERS[reporter.type](
                    reporter.endpoint,
                    headers=reporter.headers,
                    gzip=reporter.gzip,
                    tls=_reporters.tls_settings(reporter.tls),
                )
        raise ValueError(f"reporter type {reporter.type!r} is not supported by this {what}")

    return make
