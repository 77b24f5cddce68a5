"""OTLP requests decoded by our reader agree with opentelemetry-proto's generated classes.

Random requests are built with the generated classes and serialized by protobuf itself;
what we decode must equal what the generated classes hold. Unknown fields anywhere are
skipped; the OTLP/JSON form of the same request decodes to the same records.
"""

import base64
import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from gatetrace.gateway import otlp_data, otlp_json, otlp_protobuf
from gatetrace.runtime.reporting import protobuf_wire as pb

Request = trace_service_pb2.ExportTraceServiceRequest
MAX = 10_000

# -- random requests, built with the generated classes ----------------------------------

scalars = st.one_of(
    st.builds(lambda v: common_pb2.AnyValue(string_value=v), st.text(max_size=20)),
    st.builds(lambda v: common_pb2.AnyValue(bool_value=v), st.booleans()),
    st.builds(lambda v: common_pb2.AnyValue(int_value=v), st.integers(-(1 << 63), (1 << 63) - 1)),
    st.builds(lambda v: common_pb2.AnyValue(double_value=v), st.floats(allow_nan=False)),
    st.builds(lambda v: common_pb2.AnyValue(bytes_value=v), st.binary(max_size=10)),
    st.just(common_pb2.AnyValue()),
)


def _array(values: list[common_pb2.AnyValue]) -> common_pb2.AnyValue:
    return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=values))


def _kvlist(pairs: list[tuple[str, common_pb2.AnyValue]]) -> common_pb2.AnyValue:
    kvs = [common_pb2.KeyValue(key=k, value=v) for k, v in pairs]
    return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=kvs))


any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=3)),
        st.builds(_kvlist, st.lists(st.tuples(st.text(max_size=5), inner), max_size=3)),
    ),
    max_leaves=6,
)
key_values = st.lists(
    st.builds(common_pb2.KeyValue, key=st.text(max_size=10), value=any_values), max_size=4
)
ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=17))
span_ids = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=9))
u64 = st.integers(0, (1 << 64) - 1)
u32 = st.integers(0, (1 << 32) - 1)
events = st.builds(
    trace_pb2.Span.Event, time_unix_nano=u64, name=st.text(max_size=10), attributes=key_values
)
links = st.builds(
    trace_pb2.Span.Link,
    trace_id=ids,
    span_id=span_ids,
    trace_state=st.text(max_size=10),
    attributes=key_values,
    flags=u32,
)
# proto3 enums are open: any int32 travels, negative ones as 10-byte varints
enums = st.one_of(st.integers(0, 5), st.integers(-(1 << 31), (1 << 31) - 1))
statuses = st.builds(trace_pb2.Status, message=st.text(max_size=10), code=enums)
spans = st.builds(
    trace_pb2.Span,
    trace_id=ids,
    span_id=span_ids,
    trace_state=st.text(max_size=10),
    parent_span_id=span_ids,
    flags=u32,
    name=st.text(max_size=20),
    kind=enums,
    start_time_unix_nano=u64,
    end_time_unix_nano=u64,
    attributes=key_values,
    dropped_attributes_count=u32,
    events=st.lists(events, max_size=2),
    links=st.lists(links, max_size=2),
    status=statuses,
)
requests = st.builds(
    Request,
    resource_spans=st.lists(
        st.builds(
            trace_pb2.ResourceSpans,
            resource=st.builds(resource_pb2.Resource, attributes=key_values),
            scope_spans=st.lists(
                st.builds(
                    trace_pb2.ScopeSpans,
                    scope=st.builds(common_pb2.InstrumentationScope, name=st.text(max_size=5)),
                    spans=st.lists(spans, max_size=3),
                ),
                max_size=2,
            ),
            schema_url=st.text(max_size=5),
        ),
        max_size=2,
    ),
)

# -- what the generated classes hold, as our records -------------------------------------


def python_value(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [python_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: python_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes(kvs: Any) -> otlp_data.Attributes:
    return [(kv.key, otlp_data.flatten(python_value(kv.value))) for kv in kvs]


def expected(request: Any) -> list[otlp_data.OtlpResourceSpans]:
    found = []
    for r, rs in enumerate(request.resource_spans):
        out = otlp_data.OtlpResourceSpans(attributes=attributes(rs.resource.attributes))
        for s, ss in enumerate(rs.scope_spans):
            for i, span in enumerate(ss.spans):
                out.spans.append(
                    otlp_data.OtlpSpan(
                        where=(r, s, i),
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                        trace_state=span.trace_state,
                        parent_span_id=span.parent_span_id,
                        flags=span.flags,
                        name=span.name,
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=attributes(span.attributes),
                        events=[
                            otlp_data.OtlpEvent(e.time_unix_nano, e.name, attributes(e.attributes))
                            for e in span.events
                        ],
                        links=[
                            otlp_data.OtlpLink(
                                link.trace_id,
                                link.span_id,
                                link.trace_state,
                                attributes(link.attributes),
                                link.flags,
                            )
                            for link in span.links
                        ],
                        status_code=span.status.code,
                        status_message=span.status.message,
                    )
                )
        found.append(out)
    return found


def normalized(records: list[otlp_data.OtlpResourceSpans]) -> str:
    """Records as text, NaN equal to NaN (floats compare by their repr)."""
    return repr(records)


# -- protobuf --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_decodes_what_protobuf_serialized(request: Any) -> None:
    body = request.SerializeToString()
    assert normalized(otlp_protobuf.decode_request(body, max_spans=MAX)) == normalized(
        expected(request)
    )


unknown_fields = st.lists(
    st.one_of(
        st.builds(
            lambda n, v: pb.field_key(n, pb.VARINT) + pb.varint(v), st.integers(17, 999), u64
        ),
        st.builds(
            lambda n, v: pb.len_field(pb.field_key(n, pb.LEN), v),
            st.integers(17, 999),
            st.binary(max_size=8),
        ),
        st.builds(lambda n: pb.field_key(n, pb.FIXED64) + bytes(8), st.integers(17, 999)),
        st.builds(lambda n: pb.field_key(n, pb.FIXED32) + bytes(4), st.integers(17, 999)),
        st.builds(  # a group, which proto3 parsers skip too
            lambda n: pb.varint(n << 3 | 3) + b"\x08\x01" + pb.varint(n << 3 | 4),
            st.integers(17, 999),
        ),
    ),
    min_size=1,
    max_size=3,
)


def _wrap(number: int, payload: bytes) -> bytes:
    return pb.len_field(pb.field_key(number, pb.LEN), payload)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans, unknown_fields, unknown_fields, unknown_fields)
def test_unknown_fields_are_skipped_at_every_level(
    span: Any, in_span: list[bytes], in_scope: list[bytes], at_top: list[bytes]
) -> None:
    body = _wrap(
        1, _wrap(2, _wrap(2, span.SerializeToString() + b"".join(in_span)) + b"".join(in_scope))
    ) + b"".join(at_top)
    canonical = Request.FromString(body)  # the generated parser skips them as well
    ours = otlp_protobuf.decode_request(body, max_spans=MAX)
    assert normalized(ours) == normalized(expected(canonical))


def test_a_message_field_given_twice_is_merged() -> None:
    status_a = trace_pb2.Status(message="first").SerializeToString()
    status_b = trace_pb2.Status(code=2).SerializeToString()
    span = trace_pb2.Span(name="n").SerializeToString() + _wrap(15, status_a) + _wrap(15, status_b)
    body = _wrap(1, _wrap(2, _wrap(2, span)))
    [resource] = otlp_protobuf.decode_request(body, max_spans=MAX)
    held = Request.FromString(body).resource_spans[0].scope_spans[0].spans[0].status
    assert (held.message, held.code) == ("first", 2)
    assert (resource.spans[0].status_message, resource.spans[0].status_code) == ("first", 2)


def _decoded_like_protobuf_or_refused(body: bytes) -> bool:
    try:
        ours = otlp_protobuf.decode_request(body, max_spans=MAX)
    except pb.WireError:
        return False
    canonical = Request.FromString(body)
    assert normalized(ours) == normalized(expected(canonical))
    return True


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_are_decoded_like_protobuf_or_refused(body: bytes) -> None:
    _decoded_like_protobuf_or_refused(body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3))
def test_damaged_requests_are_decoded_like_protobuf_or_refused(
    request: Any, damage: list[tuple[int, int]]
) -> None:
    body = bytearray(request.SerializeToString())
    for position, byte in damage:
        if body:
            body[position % len(body)] = byte
    _decoded_like_protobuf_or_refused(bytes(body))


def test_spans_past_the_limit_stop_the_decoding() -> None:
    request = Request(
        resource_spans=[
            trace_pb2.ResourceSpans(
                scope_spans=[trace_pb2.ScopeSpans(spans=[trace_pb2.Span()] * 3)]
            )
        ]
        * 2
    )
    body = request.SerializeToString()
    assert len(otlp_protobuf.decode_request(body, max_spans=6)) == 2
    with pytest.raises(otlp_data.TooManySpansError, match="more than 5 spans"):
        otlp_protobuf.decode_request(body, max_spans=5)


def test_attribute_values_nested_past_the_depth_limit_are_refused() -> None:
    value = common_pb2.AnyValue(string_value="deep")
    for _ in range(20):
        value = _array([value])
    span = trace_pb2.Span(attributes=[common_pb2.KeyValue(key="k", value=value)])
    body = _wrap(1, _wrap(2, _wrap(2, span.SerializeToString())))
    with pytest.raises(pb.WireError, match="nested deeper"):
        otlp_protobuf.decode_request(body, max_spans=MAX)


def test_a_string_that_is_not_utf8_is_refused() -> None:
    span = pb.len_field(pb.field_key(5, pb.LEN), b"\xff\xfe")
    with pytest.raises(pb.WireError, match="UTF-8"):
        otlp_protobuf.decode_request(_wrap(1, _wrap(2, _wrap(2, span))), max_spans=MAX)


# -- the same request as OTLP/JSON ---------------------------------------------------------

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants ids as hex."""
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex().upper() if key in _ID_KEYS else _hex_ids(value)
            for key, value in node.items()
        }
    return node


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests, st.booleans())
def test_the_json_form_decodes_to_the_same_records(request: Any, enum_names: bool) -> None:
    document = _hex_ids(json_format.MessageToDict(request, use_integers_for_enums=not enum_names))
    body = json.dumps(document).encode()
    from_json = otlp_json.decode_request(body, max_spans=MAX)
    from_protobuf = otlp_protobuf.decode_request(request.SerializeToString(), max_spans=MAX)
    assert normalized(from_json) == normalized(from_protobuf)


def test_nan_and_infinities_are_read_from_json_strings() -> None:
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": k, "value": {"doubleValue": v}}
                            for k, v in (("a", "NaN"), ("b", "Infinity"), ("c", "-Infinity"))
                        ]
                    }
                }
            ]
        }
    ).encode()
    [resource] = otlp_json.decode_request(body, max_spans=MAX)
    values = dict(resource.attributes)
    assert math.isnan(float(values["a"])) and values["b"] == math.inf and values["c"] == -math.inf


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300])
def test_attributes_of_every_length_read_alike(size: int) -> None:
    """Short keys and values take a fast path, longer ones the general one: both agree."""
    values = [
        common_pb2.AnyValue(string_value="v" * size),
        common_pb2.AnyValue(int_value=-size),
        common_pb2.AnyValue(bool_value=size % 2 == 0),
        common_pb2.AnyValue(double_value=size / 3),
    ]
    kvs = [common_pb2.KeyValue(key="k" * size, value=value) for value in values]
    request = Request(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=kvs),
                scope_spans=[trace_pb2.ScopeSpans(spans=[trace_pb2.Span(attributes=kvs)])],
            )
        ]
    )
    decoded = otlp_protobuf.decode_request(request.SerializeToString(), max_spans=MAX)
    assert normalized(decoded) == normalized(expected(request))
