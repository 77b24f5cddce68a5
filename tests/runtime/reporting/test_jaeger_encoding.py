"""The Jaeger encoders without sockets: properties, list sizes, both mapping paths agree.

Every check decodes with Apache thrift (compact or binary) into jaeger-client's
generated types; expected values are computed here, not by gatetrace code.
"""

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jaeger_testtools import decode_binary_batch, decode_emit_batch, make_span, tag_dict, u64

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.reporting import jaeger_compact, jaeger_thrift, thrift_compact

I64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
SURROGATE_TEXT = st.text(max_size=20)  # may hold lone surrogates
VALUES = st.one_of(TEXT, st.booleans(), I64, st.floats(allow_nan=False), SURROGATE_TEXT)


def expected_tag(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("BOOL", value)
    if isinstance(value, int):
        return ("LONG", value)
    if isinstance(value, float):
        return ("DOUBLE", value)
    return ("STRING", value.encode("utf-8", "replace").decode("utf-8"))


def signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def encode_message(spans: list[span.Span], seq_no: int = 1) -> bytes:
    encoder = jaeger_compact.CompactEncoder(jaeger_thrift.ValueSanitizer())
    process = encoder.process(spans[0].resource)
    return encoder.message(process, [encoder.span(s) for s in spans], seq_no, (1, 2, 3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace_id=st.integers(min_value=1, max_value=(1 << 128) - 1),
    span_id=st.integers(min_value=1, max_value=(1 << 64) - 1),
    parent_id=st.one_of(st.none(), st.integers(min_value=1, max_value=(1 << 64) - 1)),
    start_ns=st.integers(min_value=0, max_value=1 << 62),
    duration_ns=st.integers(min_value=0, max_value=10**15),
    tags=st.dictionaries(TEXT, VALUES, max_size=30),
    log_fields=st.lists(st.dictionaries(TEXT, VALUES, max_size=20), max_size=3),
    debug=st.booleans(),
    seq_no=st.integers(min_value=0, max_value=(1 << 63) - 1),
)
def test_compact_encoding_round_trips(
    trace_id: int,
    span_id: int,
    parent_id: int | None,
    start_ns: int,
    duration_ns: int,
    tags: dict[str, Any],
    log_fields: list[dict[str, Any]],
    debug: bool,
    seq_no: int,
) -> None:
    logs = [span.LogRecord(start_ns + i * 1000, fields) for i, fields in enumerate(log_fields)]
    item = make_span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        kind=span.SpanKind.INTERNAL,
        tags=tags,
        logs=logs,
        debug=debug,
        start_ns=start_ns,
        duration_ns=duration_ns,
    )
    decoded = decode_emit_batch(encode_message([item], seq_no))
    assert decoded.seq_no == seq_no
    assert decoded.stats == (1, 2, 3)
    (got,) = decoded.batch.spans
    assert got.traceIdHigh == signed(trace_id >> 64)
    assert got.traceIdLow == signed(trace_id & ((1 << 64) - 1))
    assert got.spanId == signed(span_id)
    assert got.parentSpanId == signed(parent_id or 0)
    assert got.flags == (3 if debug else 1)
    assert got.startTime == start_ns // 1000
    assert got.duration == duration_ns // 1000
    expected = {k.encode("utf-8", "replace").decode(): expected_tag(v) for k, v in tags.items()}
    assert tag_dict(got.tags) == expected
    assert len(got.tags or []) == len(tags)
    assert [log.timestamp for log in got.logs or []] == [r.timestamp_ns // 1000 for r in logs]
    for log, record in zip(got.logs or [], logs, strict=True):
        assert tag_dict(log.fields) == {k: expected_tag(v) for k, v in record.fields.items()}


def test_long_lists_use_the_long_list_header() -> None:
    tags = {f"key{i}": i for i in range(5000)}  # also more keys than the key cache holds
    fields = {f"f{i}": f"v{i}" for i in range(40)}
    logs = [span.LogRecord(1_000_000 * i, fields) for i in range(20)]
    refs = tuple(
        span.Reference(span.ReferenceType.CHILD_OF, spancontext.SpanContext(i + 1, i + 2))
        for i in range(16)
    )
    item = make_span(tags=tags, logs=logs, references=refs)
    (got,) = decode_emit_batch(encode_message([item] * 2)).batch.spans[:1]
    assert tag_dict(got.tags) == {
        **{f"key{i}": ("LONG", i) for i in range(5000)},
        "span.kind": ("STRING", "server"),
    }
    assert len(got.logs) == 20
    expected_fields = {k: ("STRING", v) for k, v in fields.items()}
    assert all(tag_dict(log.fields) == expected_fields for log in got.logs)
    assert [(r.traceIdLow, r.spanId) for r in got.references] == [(i + 1, i + 2) for i in range(16)]


def test_batch_of_many_spans() -> None:
    spans = [make_span(span_id=i + 1, tags={"i": i}) for i in range(700)]
    decoded = decode_emit_batch(encode_message(spans))
    assert [u64(s.spanId) for s in decoded.batch.spans] == list(range(1, 701))


def test_compact_and_binary_paths_agree() -> None:
    """The hand-written compact encoder and the thriftpy2 objects carry the same Batch."""
    items = [
        make_span(
            trace_id=(1 << 127) | 99,
            span_id=(1 << 63) | 5,
            parent_id=(1 << 64) - 1,
            kind=kind,
            tags={"s": "é\udc80", "i": -5, "f": -0.0, "b": False, "n": None, "big": 1 << 80},
            logs=[span.LogRecord(123_456_789, {"event": "x", "inf": -math.inf})],
            references=(
                span.Reference(span.ReferenceType.FOLLOWS_FROM, spancontext.SpanContext(7, 8)),
            ),
            status=span.Status(span.StatusCode.ERROR, "bad"),
            debug=kind is span.SpanKind.CLIENT,
        )
        for kind in span.SpanKind
    ]
    compact = decode_emit_batch(encode_message(items, seq_no=4))
    clean = jaeger_thrift.ValueSanitizer()
    batch = jaeger_thrift.to_batch(
        jaeger_thrift.to_process(items[0].resource, clean),
        items,
        clean,
        seq_no=4,
        stats=(1, 2, 3),
    )
    binary = decode_binary_batch(jaeger_thrift.serialize_binary(batch))
    assert compact.batch == binary.batch
    assert (compact.seq_no, compact.stats) == (binary.seq_no, binary.stats) == (4, (1, 2, 3))


def test_sanitizer_cuts_on_character_boundaries() -> None:
    clean = jaeger_thrift.ValueSanitizer(max_string_bytes=17)
    assert clean.utf8("€" * 10) == ("€" * 5).encode()  # 3-byte characters: 15 bytes kept
    assert clean.utf8("a\ud800") == b"a?"
    assert clean.take() == {"value_length": 1, "invalid_utf8": 1}
    assert clean.take() == {}
    with pytest.raises(ValueError, match="max_string_bytes"):
        jaeger_thrift.ValueSanitizer(max_string_bytes=0)


def test_signed64() -> None:
    assert jaeger_thrift.signed64(0) == 0
    assert jaeger_thrift.signed64((1 << 63) - 1) == (1 << 63) - 1
    assert jaeger_thrift.signed64(1 << 63) == -(1 << 63)
    assert jaeger_thrift.signed64((1 << 64) - 1) == -1


def test_layout_rejects_an_idl_that_does_not_match_the_encoder() -> None:
    layout = thrift_compact.Layout(jaeger_thrift.THRIFT, "jaeger.thrift")
    with pytest.raises(TypeError, match=r"Span\.flags"):
        layout.field("Span", "flags", 10)  # flags is an i32, not an i64
    with pytest.raises(LookupError, match="nope"):
        layout.field("Span", "nope", 10)
