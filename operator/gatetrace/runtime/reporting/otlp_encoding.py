"""Spans to an OTLP ``ExportTraceServiceRequest``, written as protobuf bytes by hand.

Mapping (opentelemetry-proto ``trace/v1/trace.proto``):

* one ``ResourceSpans`` per distinct :class:`~gatetrace.runtime.span.Resource`
  (``service.name`` plus the resource tags), one ``ScopeSpans`` with scope
  ``gatetrace`` and the package version; both carry the resource's ``schema_url``
  (the semantic conventions version) when it has one;
* span ids as big-endian bytes, ``trace_state`` in W3C form, ``kind`` from
  :class:`~gatetrace.runtime.span.SpanKind`, start/end as fixed64 ns;
* tags as typed attributes (string, bool, int64, double; ints outside int64
  and other types become strings, counted as ``value_type``);
* logs as events: the ``event`` field (when a string) is the event name, the
  other fields its attributes; a log without one is named ``log``;
* references other than the parent as links, with the OpenTracing shim's
  ``opentracing.ref_type`` attribute (``follows_from`` / ``child_of``);
* status code and message; ``flags`` carries the W3C trace flags (sampled,
  random).

Strings longer than ``max_value_length`` are cut (``value_length``) and
strings that are not valid UTF-8 (lone surrogates) get U+FFFD replacements
(``invalid_utf8``): the encoder never raises on span content.
"""

import importlib.metadata
import struct
from collections.abc import Mapping, Sequence
from itertools import islice

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import protobuf_wire as pb
from gatetrace.runtime.reporting import text as _text

__all__ = ["SCOPE_NAME", "SCOPE_VERSION", "OtlpEncoder"]

SCOPE_NAME = "gatetrace"
try:
    SCOPE_VERSION = importlib.metadata.version("gatetrace")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    SCOPE_VERSION = "0.0.0"

_KIND = {
    _span.SpanKind.INTERNAL: b"\x30\x01",
    _span.SpanKind.SERVER: b"\x30\x02",
    _span.SpanKind.CLIENT: b"\x30\x03",
    _span.SpanKind.PRODUCER: b"\x30\x04",
    _span.SpanKind.CONSUMER: b"\x30\x05",
}
_KIND_BY_VALUE = {kind.value: field for kind, field in _KIND.items()}
_STATUS_CODE = {
    _span.StatusCode.UNSET: b"",
    _span.StatusCode.OK: b"\x18\x01",
    _span.StatusCode.ERROR: b"\x18\x02",
}
_REF_TYPE = {
    _span.ReferenceType.FOLLOWS_FROM: "follows_from",
    _span.ReferenceType.CHILD_OF: "child_of",
}
_TIMES = struct.Struct("<BQBQ")  # fields 7 and 8 (fixed64): start and end
_EVENT_TIME = struct.Struct("<BQ")  # Event field 1 (fixed64)
_DOUBLE = struct.Struct("<d")
_FLAGS = struct.Struct("<I")
_SPAN_FLAGS_KEY = pb.field_key(16, pb.FIXED32)
_LINK_FLAGS_KEY = pb.field_key(6, pb.FIXED32)
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_CACHE_LIMIT = 8192
_BLOCK_CACHE_LIMIT = 1024
_len_field = pb.len_field
_varint = pb.varint


class OtlpEncoder:
    """Encodes batches of finished spans; keeps small caches, so reuse one per reporter."""

    __slots__ = (
        "_attrs",
        "_blocks",
        "_keys",
        "_names",
        "_resources",
        "_scope",
        "_truncated",
        "max_value_length",
    )

    def __init__(
        self,
        *,
        scope_name: str = SCOPE_NAME,
        scope_version: str = SCOPE_VERSION,
        max_value_length: int = 32768,
    ) -> None:
        self.max_value_length = max_value_length
        self._truncated: dict[str, int] = {}
        self._keys: dict[str, bytes] = {}
        self._names: dict[str, bytes] = {}
        """Span name -> its Span.name field (names repeat), when nothing was cut or counted."""
        self._attrs: dict[tuple[str, object, type], bytes] = {}
        self._blocks: dict[_span.TagBlock, bytes] = {}
        """A shared tag block -> its attribute fields (b"": one of them is cut or counted,
        so the spans sharing it write their tags one by one)."""
        self._resources: dict[int, tuple[_span.Resource, bytes]] = {}
        scope = _len_field(b"\x0a", self._utf8(scope_name)) + _len_field(
            b"\x12", self._utf8(scope_version)
        )
        self._scope = _len_field(b"\x0a", scope)  # ScopeSpans.scope

    # -- entry point ---------------------------------------------------------

    def encode(self, spans: Sequence[_span.Span]) -> tuple[bytes, dict[str, int]]:
        """The request body for ``spans`` and what had to be cut, by what."""
        batch = self.begin()
        batch.add(spans)
        return batch.finish()

    def begin(self) -> "OtlpBatch":
        """An empty body to add spans to a slice at a time (see
        :func:`~gatetrace.runtime.reporting.export.encode_in_slices`)."""
        return OtlpBatch(self)

    # -- pieces ----------------------------------------------------------------

    def _count(self, what: str) -> None:
        self._truncated[what] = self._truncated.get(what, 0) + 1

    def _utf8(self, text: str) -> bytes:
        if len(text) > self.max_value_length:
            text = text[: self.max_value_length]
            self._count("value_length")
        try:
            return text.encode()
        except UnicodeEncodeError:
            self._count("invalid_utf8")
            return _text.utf8_replacing(text)

    def _resource(self, resource: _span.Resource) -> bytes:
        """ResourceSpans.resource, cached per Resource object."""
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        if len(self._resources) > 64:
            self._resources.clear()
        attrs = [_len_field(b"\x0a", self._kv("service.name", resource.service_name))]
        for key, value in resource.tags:
            if key != "service.name":
                attrs.append(_len_field(b"\x0a", self._kv(key, value)))
        body = _len_field(b"\x0a", b"".join(attrs))  # ResourceSpans.resource
        self._resources[id(resource)] = (resource, body)
        return body

    def _key(self, key: str) -> bytes:
        encoded = self._keys.get(key)
        if encoded is None:
            if type(key) is str:
                text = key
            else:  # a tag dict filled by hand may hold any hashable key
                self._count("value_type")
                text = str(key)
            counted = self._truncated
            before = sum(counted.values())
            encoded = _len_field(b"\x0a", self._utf8(text))
            if type(key) is str and sum(counted.values()) == before:
                # a key that was cut or counted is not cached: every span counts it
                if len(self._keys) > _CACHE_LIMIT:
                    self._keys.clear()
                self._keys[key] = encoded
        return encoded

    def _any_value(self, value: object) -> bytes:
        kind = type(value)
        if kind is str:
            return _len_field(b"\x0a", self._utf8(value))  # type: ignore[arg-type]
        if kind is bool:
            return b"\x10\x01" if value else b"\x10\x00"
        if kind is int:
            if _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
                return b"\x18" + _varint(value)  # type: ignore[arg-type]
            self._count("value_type")
            return _len_field(b"\x0a", _text.int_text(value).encode())  # type: ignore[arg-type]
        if kind is float:
            return b"\x21" + _DOUBLE.pack(value)
        # subclasses (IntEnum, StrEnum...) are encoded as their base type
        if isinstance(value, int):
            return self._any_value(int(value))
        if isinstance(value, float):
            return self._any_value(float(value))
        if isinstance(value, str):
            return self._any_value(str.__str__(value))
        self._count("value_type")
        return _len_field(b"\x0a", self._utf8(repr(value)))

    def _kv(self, key: str, value: object) -> bytes:
        """A KeyValue message body (without its own field key and length)."""
        return self._key(key) + _len_field(b"\x12", self._any_value(value))

    def _span_attributes(
        self, tags: Mapping[str, object], shared: _span.TagBlock | None, parts: list[bytes]
    ) -> None:
        """Span.attributes (field 9), whole fields cached by (key, value, value type): the
        type keeps ``True``, ``1`` and ``1.0`` apart; most attribute values repeat. The
        tags a span shares with others (``shared``, the block ``tags`` begins with) are
        one cached run of fields."""
        cache = self._attrs
        items = tags.items()
        if shared is not None:
            fragment = self._blocks.get(shared)
            if fragment is None:
                fragment = self._block_attributes(shared)
            if fragment:
                parts.append(fragment)
                items = islice(items, len(shared.items), None)  # type: ignore[assignment]
        for key, value in items:
            try:
                encoded = cache.get((key, value, type(value)))
            except Exception:  # an unhashable value (a list...) or a key/value that raises
                encoded = None
            if encoded is None:
                encoded = self._attribute(key, value)
            parts.append(encoded)

    def _block_attributes(self, block: _span.TagBlock) -> bytes:
        """The block's attribute fields, or b"" when encoding one cuts or counts something
        (each span must count it): counted apart, so nothing is counted twice."""
        counted = self._truncated
        scratch: dict[str, int] = {}
        self._truncated = scratch
        try:
            fragment = b"".join([self._attribute(key, value) for key, value in block.items])
        finally:
            self._truncated = counted
        if scratch:
            fragment = b""
        blocks = self._blocks
        if len(blocks) >= _BLOCK_CACHE_LIMIT:
            blocks.clear()
        blocks[block] = fragment
        return fragment

    def _attribute(self, key: str, value: object) -> bytes:
        """One Span.attributes field, cached when it is worth it: short str, int or bool
        values whose encoding cut or counted nothing (a cut is counted for every span)."""
        counted = self._truncated
        before = sum(counted.values())
        encoded = _len_field(b"\x4a", self._kv(key, value))
        kind = type(value)
        if (
            (kind is str and len(value) <= 256)  # type: ignore[arg-type]
            or kind is int
            or kind is bool
        ) and sum(counted.values()) == before:
            cache = self._attrs
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            cache[(key, value, kind)] = encoded
        return encoded

    def _attributes(self, tag: bytes, fields: Mapping[str, object], parts: list[bytes]) -> None:
        for key, value in fields.items():
            parts.append(_len_field(tag, self._kv(key, value)))

    def _event(self, log: _span.LogRecord) -> bytes:
        fields = log.fields
        name = fields.get("event")
        parts = [_EVENT_TIME.pack(0x09, log.timestamp_ns & 0xFFFFFFFFFFFFFFFF)]
        if type(name) is str:
            parts.append(_len_field(b"\x12", self._utf8(name)))
            if len(fields) > 1:
                self._attributes(b"\x1a", {k: v for k, v in fields.items() if k != "event"}, parts)
        else:
            parts.append(b"\x12\x03log")
            self._attributes(b"\x1a", fields, parts)
        return _len_field(b"\x5a", b"".join(parts))

    def _link(self, reference: _span.Reference) -> bytes:
        ctx = reference.context
        parts = [
            b"\x0a\x10" + (ctx.trace_id & ((1 << 128) - 1)).to_bytes(16, "big"),
            b"\x12\x08" + (ctx.span_id & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
        ]
        if ctx.trace_state:
            parts.append(_len_field(b"\x1a", self._trace_state(ctx.trace_state)))
        parts.append(
            _len_field(b"\x22", self._kv("opentracing.ref_type", _REF_TYPE[reference.type]))
        )
        flags = (1 if ctx.sampled else 0) | (2 if ctx.random else 0)
        parts.append(_LINK_FLAGS_KEY + _FLAGS.pack(flags))
        return _len_field(b"\x6a", b"".join(parts))

    def _trace_state(self, trace_state: Sequence[tuple[str, str]]) -> bytes:
        return self._utf8(",".join(f"{key}={value}" for key, value in trace_state))

    def _name_field(self, name: str) -> bytes:
        """The Span.name field, cached unless its encoding cut or counted something."""
        counted = self._truncated
        before = sum(counted.values())
        field = _len_field(b"\x2a", self._utf8(name))
        if type(name) is str and len(name) <= 256 and sum(counted.values()) == before:
            names = self._names
            if len(names) >= _BLOCK_CACHE_LIMIT:
                names.clear()
            names[name] = field
        return field

    def _span(self, span: _span.Span) -> bytes:
        ctx = span.context
        parts = [
            b"\x0a\x10" + (ctx.trace_id & ((1 << 128) - 1)).to_bytes(16, "big"),
            b"\x12\x08" + (ctx.span_id & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
        ]
        if ctx.trace_state:
            parts.append(_len_field(b"\x1a", self._trace_state(ctx.trace_state)))
        parent_id = span.parent_id
        if parent_id:
            parts.append(b"\x22\x08" + (parent_id & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"))
        name = span.name
        if name:
            try:
                field = self._names.get(name)
            except TypeError:  # an unhashable name: encoded as before, never cached
                field = None
            parts.append(field if field is not None else self._name_field(name))
        parts.append(_KIND_BY_VALUE[span.kind._value_])  # an Enum's own hash is Python code
        start = span.start_ns & 0xFFFFFFFFFFFFFFFF
        end = span.end_ns if span.end_ns is not None else span.start_ns
        end &= 0xFFFFFFFFFFFFFFFF
        if end < start:  # no max(): it parses keywords, the compare does not
            end = start
        parts.append(_TIMES.pack(0x39, start, 0x41, end))
        if span.tags:
            self._span_attributes(span.tags, span.shared, parts)
        for log in span.logs:
            parts.append(self._event(log))
        for reference in span.references:
            if (
                reference.type is _span.ReferenceType.FOLLOWS_FROM
                or reference.context.span_id != parent_id
            ):
                parts.append(self._link(reference))
        status = span.status
        if status.code is not _span.StatusCode.UNSET or status.description:
            body = _STATUS_CODE[status.code]
            if status.description:
                body = _len_field(b"\x12", self._utf8(status.description)) + body
            parts.append(_len_field(b"\x7a", body))
        flags = (1 if span.sampled else 0) | (2 if ctx.random else 0)
        parts.append(_SPAN_FLAGS_KEY + _FLAGS.pack(flags))
        return _len_field(b"\x12", b"".join(parts))  # ScopeSpans.spans


class OtlpBatch:
    """One ExportTraceServiceRequest being encoded: :meth:`add` slices of spans, then
    :meth:`finish`. The same bytes as one :meth:`OtlpEncoder.encode` of all of them."""

    __slots__ = ("_current", "_groups", "_last_id", "encoder", "truncated")

    def __init__(self, encoder: OtlpEncoder) -> None:
        self.encoder = encoder
        self.truncated: dict[str, int] = {}
        self._groups: dict[int, tuple[bytes, list[bytes], bytes]] = {}
        self._last_id = -1
        self._current: list[bytes] = []

    def add(self, spans: Sequence[_span.Span]) -> None:
        encoder = self.encoder
        encoder._truncated = self.truncated
        groups = self._groups
        encode_span = encoder._span
        last_id = self._last_id
        current = self._current
        for span in spans:
            rid = id(span.resource)
            if rid != last_id:
                group = groups.get(rid)
                if group is None:
                    resource = span.resource
                    schema = (
                        _len_field(b"\x1a", encoder._utf8(resource.schema_url))
                        if resource.schema_url
                        else b""
                    )  # ResourceSpans.schema_url and ScopeSpans.schema_url (both field 3)
                    group = groups[rid] = (encoder._resource(resource), [encoder._scope], schema)
                current = group[1]
                last_id = rid
            current.append(encode_span(span))
        self._last_id = last_id
        self._current = current

    def finish(self) -> tuple[bytes, dict[str, int]]:
        out = []
        for resource, encoded, schema in self._groups.values():
            scope_spans = _len_field(b"\x12", b"".join(encoded) + schema)
            out.append(_len_field(b"\x0a", resource + scope_spans + schema))
        return b"".join(out), self.truncated
