"""A specialised thrift COMPACT encoder for the Jaeger agent's ``emitBatch`` message.

thriftpy2's generic pure-Python compact protocol walks ``thrift_spec`` for
every value and is slower than the reference client; the structs here are
fixed, so this encoder writes them directly into one ``bytearray``: zigzag
varints, field headers with their delta encoding precomputed, tag keys
encoded once and cached, and the constant parts of every Tag (type field and
the header of the value field) as ready-made bytes.

The field ids and types are not typed in by hand: a
:class:`~.thrift_compact.Layout` reads them from the structs thriftpy2 loaded
from ``jaeger.thrift`` (:data:`.jaeger_thrift.THRIFT`) and checks that they
are what this code writes; the protocol primitives live in
:mod:`.thrift_compact`.

Each span is encoded on its own (a struct's encoding does not depend on its
position), so the agent exporter can size spans before it packs them into
datagrams; :meth:`CompactEncoder.message` then frames any subset of them.
"""

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import jaeger_thrift as _jt
from gatetrace.runtime.reporting import thrift_compact as _tc

__all__ = ["MESSAGE_OVERHEAD", "CompactEncoder"]

_pack_double = struct.Struct("<d").pack
_KEY_CACHE_SIZE = 4096
_put_varint = _tc.put_varint
_put_id = _tc.put_id
_put_list_header = _tc.put_list_header
_varint = _tc.varint
_zigzag = _tc.zigzag


_L = _tc.Layout(_jt.THRIFT, "jaeger.thrift")
_TT = _jt.THRIFT.TagType


def _b(*values: int) -> bytes:
    return bytes(values)


# Tag: key (cached per key), then vType and the value field's header per type.
_TAG_KEY = _b(_L.header("Tag", None, "key", _tc.TTYPE_STRING))
_TAG_VTYPE = _L.header("Tag", "key", "vType", _tc.TTYPE_I32)
_TAG_STR = _b(_TAG_VTYPE, _zigzag(_TT.STRING), _L.header("Tag", "vType", "vStr", _tc.TTYPE_STRING))
_TAG_DOUBLE = _b(
    _TAG_VTYPE, _zigzag(_TT.DOUBLE), _L.header("Tag", "vType", "vDouble", _tc.TTYPE_DOUBLE)
)
_TAG_LONG = _b(_TAG_VTYPE, _zigzag(_TT.LONG), _L.header("Tag", "vType", "vLong", _tc.TTYPE_I64))
_BOOL_TRUE = _L.header("Tag", "vType", "vBool", _tc.TTYPE_BOOL)
_TAG_TRUE = _b(_TAG_VTYPE, _zigzag(_TT.BOOL), _BOOL_TRUE, 0)
_TAG_FALSE = _b(_TAG_VTYPE, _zigzag(_TT.BOOL), _BOOL_TRUE + 1, 0)

# Log
_LOG_TS = _L.header("Log", None, "timestamp", _tc.TTYPE_I64)
_LOG_FIELDS = _L.header("Log", "timestamp", "fields", _tc.TTYPE_LIST)

# SpanRef
_REF_TYPE = _L.header("SpanRef", None, "refType", _tc.TTYPE_I32)
_REF_LOW = _L.header("SpanRef", "refType", "traceIdLow", _tc.TTYPE_I64)
_REF_HIGH = _L.header("SpanRef", "traceIdLow", "traceIdHigh", _tc.TTYPE_I64)
_REF_SPAN = _L.header("SpanRef", "traceIdHigh", "spanId", _tc.TTYPE_I64)
_REF_CHILD = _b(_REF_TYPE, _zigzag(_jt.THRIFT.SpanRefType.CHILD_OF))
_REF_FOLLOWS = _b(_REF_TYPE, _zigzag(_jt.THRIFT.SpanRefType.FOLLOWS_FROM))

# Span
_S_LOW = _L.header("Span", None, "traceIdLow", _tc.TTYPE_I64)
_S_HIGH = _L.header("Span", "traceIdLow", "traceIdHigh", _tc.TTYPE_I64)
_S_ID = _L.header("Span", "traceIdHigh", "spanId", _tc.TTYPE_I64)
_S_PARENT = _L.header("Span", "spanId", "parentSpanId", _tc.TTYPE_I64)
_S_NAME = _L.header("Span", "parentSpanId", "operationName", _tc.TTYPE_STRING)
_S_REFS = _L.header("Span", "operationName", "references", _tc.TTYPE_LIST)
_S_FLAGS_AFTER_REFS = _L.header("Span", "references", "flags", _tc.TTYPE_I32)
_S_FLAGS_AFTER_NAME = _L.header("Span", "operationName", "flags", _tc.TTYPE_I32)
_S_START = _L.header("Span", "flags", "startTime", _tc.TTYPE_I64)
_S_DURATION = _L.header("Span", "startTime", "duration", _tc.TTYPE_I64)
_S_TAGS = _L.header("Span", "duration", "tags", _tc.TTYPE_LIST)
_S_LOGS_AFTER_TAGS = _L.header("Span", "tags", "logs", _tc.TTYPE_LIST)
_S_LOGS_AFTER_DURATION = _L.header("Span", "duration", "logs", _tc.TTYPE_LIST)

# Process, Batch, ClientStats and the emitBatch message around them
_P_NAME = _b(_L.header("Process", None, "serviceName", _tc.TTYPE_STRING))
_P_TAGS = _b(_L.header("Process", "serviceName", "tags", _tc.TTYPE_LIST))
_B_PROCESS = _b(_L.header("Batch", None, "process", _tc.TTYPE_STRUCT))
_B_SPANS = _b(_L.header("Batch", "process", "spans", _tc.TTYPE_LIST))
_B_SEQ = _b(_L.header("Batch", "spans", "seqNo", _tc.TTYPE_I64))
_B_STATS = _b(_L.header("Batch", "seqNo", "stats", _tc.TTYPE_STRUCT))
_CS_FULL = _b(_L.header("ClientStats", None, "fullQueueDroppedSpans", _tc.TTYPE_I64))
_CS_LARGE = _b(
    _L.header("ClientStats", "fullQueueDroppedSpans", "tooLargeDroppedSpans", _tc.TTYPE_I64)
)
_CS_FAILED = _b(
    _L.header("ClientStats", "tooLargeDroppedSpans", "failedToEmitSpans", _tc.TTYPE_I64)
)


def _emit_batch_args_header() -> bytes:
    args = _jt.THRIFT.Agent.emitBatch_args.thrift_spec
    fid, entry = next(iter(args.items()))
    if entry[0] != _tc.TTYPE_STRUCT or entry[1] != "batch" or not 0 < fid <= 15:
        raise TypeError("jaeger.thrift: Agent.emitBatch must take (1: Batch batch)")
    return bytes(((fid << 4) | _tc.C_STRUCT,))


_MESSAGE_NAME = b"emitBatch"
_MESSAGE_HEAD = (
    bytes((_tc.PROTOCOL_ID, _tc.VERSION_ONEWAY))
    + _varint(0)  # sequence id: oneway calls expect no reply, so it is always 0
    + _varint(len(_MESSAGE_NAME))
    + _MESSAGE_NAME
    + _emit_batch_args_header()
    + _B_PROCESS
)
_MAX_SUFFIX = 1 + _tc.MAX_VARINT64 + 1 + 3 * (1 + _tc.MAX_VARINT64) + 1 + 1 + 1
MESSAGE_OVERHEAD = len(_MESSAGE_HEAD) + len(_B_SPANS) + _tc.MAX_LIST_HEADER + _MAX_SUFFIX
"""Bytes of an emitBatch message besides the encoded Process and spans (an upper bound)."""

_MIN_I64, _MAX_I64 = _jt.MIN_I64, _jt.MAX_I64


class CompactEncoder:
    """Encodes spans, processes and whole ``emitBatch`` messages. Not thread-safe."""

    __slots__ = ("_clean", "_keys", "_processes")

    def __init__(self, clean: _jt.ValueSanitizer) -> None:
        self._clean = clean
        self._keys: dict[str, bytes] = {}
        self._processes: dict[_span.Resource, bytes] = {}

    # -- tags ----------------------------------------------------------------

    def _key(self, key: Any) -> bytes:
        """A Tag's key field, encoded; clean string keys are cached (keys repeat a lot)."""
        clean = self._clean
        if type(key) is str:
            try:
                data = _jt.jaeger_key(key).encode("utf-8")
            except UnicodeEncodeError:
                data = b""
            if data and len(data) <= clean.max_string_bytes:
                encoded = _TAG_KEY + _varint(len(data)) + data
                keys = self._keys
                if len(keys) >= _KEY_CACHE_SIZE:
                    keys.clear()
                keys[key] = encoded
                return encoded
        data = clean.utf8(clean.key(key))
        return _TAG_KEY + _varint(len(data)) + data

    def _put_tags(self, out: bytearray, items: Iterable[tuple[Any, Any]]) -> None:
        keys = self._keys
        clean = self._clean
        limit = clean.max_string_bytes
        append = out.append
        for key, value in items:
            encoded_key = keys.get(key) if type(key) is str else None
            if encoded_key is None:
                encoded_key = self._key(key)
            out += encoded_key
            kind = type(value)
            if kind is int:
                if not _MIN_I64 <= value <= _MAX_I64:
                    value = clean.value(value)
                    kind = str
            elif kind is not str and kind is not bool and kind is not float:
                value = clean.value(value)
                kind = type(value)
            if kind is str:
                try:
                    data = value.encode("utf-8")
                except UnicodeEncodeError:
                    data = clean.utf8(value)
                if len(data) > limit:
                    data = clean.utf8(value)
                out += _TAG_STR
                _put_varint(out, len(data))
                out += data
                append(0)
            elif kind is bool:
                out += _TAG_TRUE if value else _TAG_FALSE
            elif kind is int:
                out += _TAG_LONG
                _put_varint(out, (value << 1) ^ (value >> 63))
                append(0)
            else:
                out += _TAG_DOUBLE
                out += _pack_double(value)
                append(0)

    # -- structs ---------------------------------------------------------------

    def span(self, span: _span.Span) -> bytes:
        """One Span struct (fields and stop byte)."""
        out = bytearray()
        append = out.append
        context = span.context
        trace_id = context.trace_id
        append(_S_LOW)
        _put_id(out, trace_id)
        append(_S_HIGH)
        _put_id(out, trace_id >> 64)
        append(_S_ID)
        _put_id(out, context.span_id)
        append(_S_PARENT)
        _put_id(out, span.parent_id or 0)
        append(_S_NAME)
        name = span.name
        try:
            data = name.encode("utf-8") if type(name) is str else b""
        except UnicodeEncodeError:
            data = b""
        if not data or len(data) > self._clean.max_string_bytes:
            data = self._clean.utf8(self._clean.text(name))
        _put_varint(out, len(data))
        out += data
        references = span.references
        if references:
            append(_S_REFS)
            _put_list_header(out, len(references))
            for ref in references:
                ref_context = ref.context
                out += _REF_FOLLOWS if ref.type is _span.ReferenceType.FOLLOWS_FROM else _REF_CHILD
                append(_REF_LOW)
                _put_id(out, ref_context.trace_id)
                append(_REF_HIGH)
                _put_id(out, ref_context.trace_id >> 64)
                append(_REF_SPAN)
                _put_id(out, ref_context.span_id)
                append(0)
            append(_S_FLAGS_AFTER_REFS)
        else:
            append(_S_FLAGS_AFTER_NAME)
        flags = (1 if span.sampled else 0) | (2 if context.debug else 0)
        append(flags << 1)
        start_us = span.start_ns // 1000
        append(_S_START)
        _put_varint(out, _zigzag(start_us))
        end_ns = span.end_ns
        duration_us = (end_ns - span.start_ns) // 1000 if end_ns is not None else 0
        append(_S_DURATION)
        _put_varint(out, duration_us << 1 if duration_us > 0 else 0)
        tags = span.tags
        extra = _jt.extra_tags(span)
        count = len(tags) + len(extra)
        if count:
            append(_S_TAGS)
            _put_list_header(out, count)
            self._put_tags(out, tags.items())
            if extra:
                self._put_tags(out, extra)
        logs = span.logs
        if logs:
            append(_S_LOGS_AFTER_TAGS if count else _S_LOGS_AFTER_DURATION)
            _put_list_header(out, len(logs))
            for log in logs:
                append(_LOG_TS)
                _put_varint(out, _zigzag(log.timestamp_ns // 1000))
                append(_LOG_FIELDS)
                fields = log.fields
                _put_list_header(out, len(fields))
                self._put_tags(out, fields.items())
                append(0)
        append(0)
        return bytes(out)

    def process(self, resource: _span.Resource) -> bytes:
        """The Process struct for ``resource`` (cached: resources are few and immutable)."""
        cached = self._processes.get(resource)
        if cached is not None:
            return cached
        out = bytearray(_P_NAME)
        clean = self._clean
        name = clean.utf8(clean.text(resource.service_name))
        _put_varint(out, len(name))
        out += name
        if resource.tags:
            out += _P_TAGS
            _put_list_header(out, len(resource.tags))
            self._put_tags(out, resource.tags)
        out.append(0)
        encoded = bytes(out)
        if len(self._processes) >= 64:
            self._processes.clear()
        self._processes[resource] = encoded
        return encoded

    def message(
        self, process: bytes, spans: Sequence[bytes], seq_no: int, stats: tuple[int, int, int]
    ) -> bytes:
        """A complete ``Agent.emitBatch`` oneway message holding encoded ``spans``.

        ``stats`` are the cumulative ClientStats: spans dropped on a full queue,
        too large for a datagram, and lost to failed sends.
        """
        out = bytearray(_MESSAGE_HEAD)
        out += process
        out += _B_SPANS
        _put_list_header(out, len(spans))
        for encoded in spans:
            out += encoded
        out += _B_SEQ
        _put_varint(out, _zigzag(seq_no))
        out += _B_STATS
        for header, value in zip((_CS_FULL, _CS_LARGE, _CS_FAILED), stats, strict=True):
            out += header
            _put_varint(out, _zigzag(min(max(value, 0), _MAX_I64)))
        out += b"\x00\x00\x00"  # ends ClientStats, Batch, emitBatch_args
        return bytes(out)
