"""gatetrace.runtime: the tracing runtime shared by the gateway and demo services.

Ids, spans, the contextvars-based active span, propagation formats, samplers,
reporters and the batching engine. The bottom layer: it imports only the
standard library, thriftpy2 and aiohttp (HTTP reporters), and grpcio (the
optional ``otlpGrpc`` reporter, imported only when one is built), never another
gatetrace package.
"""

from gatetrace.runtime.baggage import EMPTY_BAGGAGE, Baggage, BaggageEntry
from gatetrace.runtime.context import attach, current_span, detach, use_span
from gatetrace.runtime.ids import (
    format_span_id,
    format_trace_id,
    new_span_id,
    new_trace_id,
    parse_span_id,
    parse_trace_id,
)
from gatetrace.runtime.span import (
    LogRecord,
    Reference,
    ReferenceType,
    Resource,
    Span,
    SpanKind,
    SpanLimits,
    Status,
    StatusCode,
    TagBlock,
    TagValue,
)
from gatetrace.runtime.spancontext import SpanContext, TraceState
from gatetrace.runtime.tracer import CURRENT, SpanProcessor, Tracer, TracerMetrics

__all__ = [
    "CURRENT",
    "EMPTY_BAGGAGE",
    "Baggage",
    "BaggageEntry",
    "LogRecord",
    "Reference",
    "ReferenceType",
    "Resource",
    "Span",
    "SpanContext",
    "SpanKind",
    "SpanLimits",
    "SpanProcessor",
    "Status",
    "StatusCode",
    "TagBlock",
    "TagValue",
    "TraceState",
    "Tracer",
    "TracerMetrics",
    "attach",
    "current_span",
    "detach",
    "format_span_id",
    "format_trace_id",
    "new_span_id",
    "new_trace_id",
    "parse_span_id",
    "parse_trace_id",
    "use_span",
]
