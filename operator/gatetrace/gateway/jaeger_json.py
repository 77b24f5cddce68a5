"""Spans in the JSON shape of the Jaeger query service (``/api/traces``).

Jaeger UI and Grafana's Jaeger data source read exactly this: traces with
``traceID``, ``spans`` and ``processes``; spans with hex ids, ``references``,
``startTime``/``duration`` in microseconds, typed ``tags`` and ``logs``, and a
``processID`` pointing into ``processes``. Every answer is wrapped in the
query service's envelope ``{data, total, limit, offset, errors}``.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gatetrace.runtime import ids
from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import jaeger_thrift as _jaeger_thrift

__all__ = [
    "encode_traces",
    "envelope",
    "error_envelope",
    "span_json",
    "tag",
    "trace_json",
    "traces_json",
]

_REF_TYPES = {
    _span.ReferenceType.CHILD_OF: "CHILD_OF",
    _span.ReferenceType.FOLLOWS_FROM: "FOLLOWS_FROM",
}


def envelope(data: Any, *, total: int | None = None) -> dict[str, Any]:
    """The query service's response wrapper."""
    if total is None:
        total = len(data) if isinstance(data, list) else 0
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": None}


def error_envelope(status: int, message: str) -> dict[str, Any]:
    return {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": message}],
    }


def tag(key: str, value: _span.TagValue) -> dict[str, Any]:
    """One typed key/value (``string``, ``bool``, ``int64``, ``float64``)."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    return {"key": key, "type": "string", "value": str(value)}


def _us(ns: int) -> int:
    return ns // 1000


def _references(span: _span.Span) -> list[dict[str, str]]:
    refs: list[dict[str, str]] = []
    parent_listed = False
    for ref in span.references:
        if ref.context.span_id == span.parent_id:
            parent_listed = True
        refs.append(
            {
                "refType": _REF_TYPES[ref.type],
                "traceID": ids.format_trace_id(ref.context.trace_id),
                "spanID": ids.format_span_id(ref.context.span_id),
            }
        )
    if span.parent_id is not None and not parent_listed:
        refs.insert(
            0,
            {
                "refType": "CHILD_OF",
                "traceID": ids.format_trace_id(span.trace_id),
                "spanID": ids.format_span_id(span.parent_id),
            },
        )
    return refs


def _tags(span: _span.Span) -> list[dict[str, Any]]:
    """The span's tags as Jaeger names and writes them (the reporters' mapping)."""
    return [tag(str(k), v) for k, v in _jaeger_thrift.span_tag_items(span)]


def span_json(span: _span.Span, process_id: str) -> dict[str, Any]:
    duration = span.duration_ns or 0
    return {
        "traceID": ids.format_trace_id(span.trace_id),
        "spanID": ids.format_span_id(span.span_id),
        "flags": 1 if span.sampled else 0,
        "operationName": span.name,
        "references": _references(span),
        "startTime": _us(span.start_ns),
        "duration": _us(duration),
        "tags": _tags(span),
        "logs": [
            {
                "timestamp": _us(log.timestamp_ns),
                "fields": [tag(k, v) for k, v in log.fields.items()],
            }
            for log in span.logs
        ],
        "processID": process_id,
        "warnings": None,
    }


def trace_json(spans: Sequence[_span.Span]) -> dict[str, Any]:
    """One trace: its spans (by start time) and one process per distinct resource."""
    processes: dict[_span.Resource, str] = {}
    out_spans = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        process_id = processes.get(span.resource)
        if process_id is None:
            process_id = processes[span.resource] = f"p{len(processes) + 1}"
        out_spans.append(span_json(span, process_id))
    return {
        "traceID": ids.format_trace_id(spans[0].trace_id) if spans else "",
        "spans": out_spans,
        "processes": {
            pid: {
                "serviceName": resource.service_name,
                "tags": [tag(k, v) for k, v in resource.tags],
            }
            for resource, pid in processes.items()
        },
        "warnings": None,
    }


def traces_json(traces: Iterable[Sequence[_span.Span]]) -> list[dict[str, Any]]:
    return [trace_json(spans) for spans in traces if spans]


CHUNK_CHARS = 64 * 1024
""":func:`encode_traces` hands out pieces of about this size (at least one span each)."""

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def encode_traces(traces: Iterable[Sequence[_span.Span]]) -> Iterator[str]:
    """``envelope(traces_json(traces), total=0)`` as compact ASCII JSON, in pieces.

    The pieces joined equal ``json.dumps`` of that envelope, but no piece is much more
    than :data:`CHUNK_CHARS` (a span is never split): the caller yields to the event loop
    between pieces. One ``json.dumps`` of a whole answer holds the GIL until it is done,
    so a worker thread would not spare the proxy's loop a 100 MB answer.
    """
    parts: list[str] = ['{"data":[']
    size = 0
    first_trace = True
    for spans in traces:
        if not spans:
            continue
        trace_id = _dumps(ids.format_trace_id(spans[0].trace_id))
        parts.append(f'{"" if first_trace else ","}{{"traceID":{trace_id},"spans":[')
        first_trace = False
        processes: dict[_span.Resource, str] = {}
        first_span = True
        for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
            process_id = processes.get(span.resource)
            if process_id is None:
                process_id = processes[span.resource] = f"p{len(processes) + 1}"
            text = _dumps(span_json(span, process_id))
            parts.append(text if first_span else "," + text)
            first_span = False
            size += len(text)
            if size >= CHUNK_CHARS:
                yield "".join(parts)
                parts.clear()
                size = 0
        described = {
            pid: {
                "serviceName": resource.service_name,
                "tags": [tag(k, v) for k, v in resource.tags],
            }
            for resource, pid in processes.items()
        }
        parts.append(f'],"processes":{_dumps(described)},"warnings":null}}')
    parts.append('],"total":0,"limit":0,"offset":0,"errors":null}')
    yield "".join(parts)
