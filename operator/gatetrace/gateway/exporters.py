"""Reporter models -> runtime exporters, for :func:`gatetrace.policy.build.build_runtime`.

The policy layer builds the batching processors but may not import aiohttp
(the HTTP transports) nor know the gateway's span store; this module is the
:data:`~gatetrace.policy.build.ExporterFactory` the gateway hands it. Exporters
open their sockets lazily, so building one for a config that is then
rejected costs nothing.
"""

import logging

from gatetrace.gateway import store as _store
from gatetrace.policy import build as _build
from gatetrace.policy import model as _model
from gatetrace.policy import reporters as _reporters
from gatetrace.runtime.reporting import export as _export
from gatetrace.runtime.reporting import jaeger_agent as _jaeger_agent
from gatetrace.runtime.reporting import jaeger_collector as _jaeger_collector
from gatetrace.runtime.reporting import log as _log_reporter
from gatetrace.runtime.reporting import memory as _memory
from gatetrace.runtime.reporting import otlp as _otlp
from gatetrace.runtime.reporting import zipkin as _zipkin

__all__ = ["configure_store", "factory"]

_span_log = logging.getLogger("gatetrace.spans")


def factory(store: _store.SpanStore) -> _build.ExporterFactory:
    """An exporter factory whose ``memory`` reporter writes into ``store``."""

    def make(reporter: _reporters.Reporter) -> _export.Exporter:
        match reporter:
            case _reporters.MemoryReporter():
                return _memory.MemoryExporter(store)
            case _reporters.LogReporter():
                return _log_reporter.LogExporter(logger=_span_log)
            case _reporters.ZipkinReporter(endpoint=endpoint, gzip=gzip):
                return _zipkin.ZipkinExporter(endpoint, gzip=gzip)
            case _reporters.OtlpHttpReporter(endpoint=endpoint, headers=headers, gzip=gzip):
                return _otlp.OtlpHttpExporter(endpoint, headers=headers, gzip=gzip)
            case _reporters.JaegerAgentReporter(host=host, port=port):
                return _jaeger_agent.JaegerAgentExporter(host, port)
            case _reporters.JaegerCollectorReporter(endpoint=endpoint):
                return _jaeger_collector.JaegerCollectorExporter(endpoint)
        raise ValueError(f"reporter type {reporter.type!r} is not supported by this gateway")

    return make


def configure_store(store: _store.SpanStore, config: _model.TracingConfig) -> None:
    """Apply the bounds of the config's ``memory`` reporter (if any) to ``store``."""
    for reporter in config.reporters:
        if isinstance(reporter, _reporters.MemoryReporter):
            store.configure(
                max_spans=reporter.max_spans,
                max_age_seconds=float(reporter.max_age_seconds),
                max_bytes=reporter.max_bytes,
                max_spans_per_trace=reporter.max_spans_per_trace,
            )
            return
