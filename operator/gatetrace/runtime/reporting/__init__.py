"""Reporters: the batching engine, encoders and transports for each backend.

Part of the runtime layer: stdlib, thriftpy2 and aiohttp only (plus grpcio,
the optional extra of the ``otlpGrpc`` reporter, imported when one is built). The request
path touches only :meth:`BatchingProcessor.on_end` (an append to a bounded
queue); everything else runs in the engine's task. Build one exporter per
configured reporter, wrap each in a :class:`BatchingProcessor` (own queue,
task and metrics) and hand a :class:`FanOutProcessor` of them to the tracer.
"""

from gatetrace.runtime.reporting.engine import (
    BatchingProcessor,
    BatchSettings,
    FanOutProcessor,
    ManagedProcessor,
)
from gatetrace.runtime.reporting.export import Exporter, ExportOutcome, ExportResult
from gatetrace.runtime.reporting.http import HttpResponse, HttpTransport
from gatetrace.runtime.reporting.jaeger_agent import JaegerAgentExporter
from gatetrace.runtime.reporting.jaeger_collector import JaegerCollectorExporter
from gatetrace.runtime.reporting.log import LogExporter
from gatetrace.runtime.reporting.memory import (
    MemoryExporter,
    RingBufferSink,
    SpanSink,
    memory_processor,
)
from gatetrace.runtime.reporting.otlp import OtlpHttpExporter
from gatetrace.runtime.reporting.otlp_grpc import OtlpGrpcExporter
from gatetrace.runtime.reporting.stats import ReporterMetrics
from gatetrace.runtime.reporting.tls import TlsSettings
from gatetrace.runtime.reporting.zipkin import ZipkinExporter

__all__ = [
    "BatchSettings",
    "BatchingProcessor",
    "ExportOutcome",
    "ExportResult",
    "Exporter",
    "FanOutProcessor",
    "HttpResponse",
    "HttpTransport",
    "JaegerAgentExporter",
    "JaegerCollectorExporter",
    "LogExporter",
    "ManagedProcessor",
    "MemoryExporter",
    "OtlpGrpcExporter",
    "OtlpHttpExporter",
    "ReporterMetrics",
    "RingBufferSink",
    "SpanSink",
    "TlsSettings",
    "ZipkinExporter",
    "memory_processor",
]
