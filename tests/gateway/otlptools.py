"""Requests for the OTLP receiver tests, built with opentelemetry-proto's generated classes,
and its answers read back with them (and googleapis' ``google.rpc.Status``)."""

import base64
import gzip
import json
import os
from typing import Any

import aiohttp
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Request = trace_service_pb2.ExportTraceServiceRequest
Response = trace_service_pb2.ExportTraceServiceResponse


def attribute(key: str, value: Any) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        any_value = common_pb2.AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = common_pb2.AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = common_pb2.AnyValue(double_value=value)
    else:
        any_value = common_pb2.AnyValue(string_value=value)
    return common_pb2.KeyValue(key=key, value=any_value)


def span(
    name: str = "op",
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent: bytes = b"",
    start_ns: int = 1_700_000_000_000_000_000,
    duration_ns: int = 5_000_000,
    **fields: Any,
) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=trace_id if trace_id is not None else os.urandom(16),
        span_id=span_id if span_id is not None else os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ns,
        **fields,
    )


def request(service: str, spans: list[trace_pb2.Span], **resource: Any) -> Any:
    attributes = [attribute("service.name", service)]
    attributes += [attribute(k, v) for k, v in resource.items()]
    return Request(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=attributes),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
            )
        ]
    )


def as_json(message: Any) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping with hex ids and integer enums."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)

    def hex_ids(node: Any) -> Any:
        if isinstance(node, list):
            return [hex_ids(item) for item in node]
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId")
                else hex_ids(v)
                for k, v in node.items()
            }
        return node

    return json.dumps(hex_ids(document)).encode()


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    content_type: str = PROTOBUF,
    token: str | None = None,
    gzipped: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes, Any]:
    """POST to ``url``/v1/traces; (status, content type, body, response headers)."""
    sent = {"Content-Type": content_type, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if gzipped:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    async with http.post(url + "/v1/traces", data=body, headers=sent) as response:
        return response.status, response.content_type, await response.read(), response.headers


def status_of(content_type: str, body: bytes) -> tuple[int, str]:
    """(code, message) of a ``google.rpc.Status`` answer in either encoding."""
    if content_type == JSON:
        document = json.loads(body)
        return document.get("code", 0), document["message"]
    parsed = status_pb2.Status.FromString(body)
    return parsed.code, parsed.message


def response_of(content_type: str, body: bytes) -> tuple[int, str]:
    """(rejected spans, error message) of an ``ExportTraceServiceResponse``."""
    if content_type == JSON:
        parsed = json_format.Parse(body, Response())
    else:
        parsed = Response.FromString(body)
    return parsed.partial_success.rejected_spans, parsed.partial_success.error_message
