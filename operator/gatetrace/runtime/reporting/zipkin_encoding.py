"""Zipkin v2 JSON encoding of finished spans (the ``zipkin`` and ``log`` reporters).

Mapping (zipkin-api ``zipkin2-api.yaml``, ``Span``):

* ``traceId`` always 32 lowercase hex digits, ``id``/``parentId`` 16;
* ``kind`` SERVER/CLIENT/PRODUCER/CONSUMER, absent for internal spans;
* ``timestamp`` and ``duration`` in microseconds, ``duration`` at least 1;
* ``localEndpoint``: the resource's service name, plus ``ipv4``/``ipv6`` and
  ``port`` from the resource tags ``ip``/``host.ip`` and ``port``/``host.port``;
* ``remoteEndpoint`` for client and producer spans, from the tags
  ``peer.service``, ``network.peer.address``/``server.address`` and
  ``server.port``/``network.peer.port``;
* tags as strings (``true``/``false`` for bools), after the resource attributes
  other than ``service.name`` (``k8s.pod.name``, ``service.instance.id``...: what the
  OpenTelemetry Collector's Zipkin exporter writes; a span tag wins on a shared key);
* status (OpenTelemetry's Zipkin exporter spec): ``otel.status_code`` ``OK`` or ``ERROR``,
  and for an error the ``error`` tag holding its description (``""`` when it has none);
* each log becomes an annotation: its ``event`` field when that is the only
  field; an event with attributes (an ``exception``) as ``{"name":{attributes}}`` compact
  JSON; a log without an ``event`` name as its fields in compact JSON;
* ``debug`` for debug-forced traces. ``shared`` is never set: gatetrace gives
  every span its own id (no Zipkin-style client/server id sharing).

Strings longer than ``max_value_length`` are cut (``value_length``), bodies
with strings that are not valid UTF-8 get U+FFFD replacements
(``invalid_utf8``, counted once per batch), values of other types are
written with ``str()`` (``value_type``).

Encoding cost matters (every sampled request pays it): :meth:`ZipkinEncoder.encode`
writes the common span shape straight to JSON text (cached endpoint and key
fragments, the C string escaper) instead of building dicts for
:mod:`json` to walk; spans with logs, an error status or unusual tag keys take
:meth:`ZipkinEncoder.span_dict`. Both give the same bytes.
"""

import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any, Final

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import text as _text

__all__ = ["ZipkinBatch", "ZipkinEncoder"]


_KIND = {
    _span.SpanKind.SERVER: "SERVER",
    _span.SpanKind.CLIENT: "CLIENT",
    _span.SpanKind.PRODUCER: "PRODUCER",
    _span.SpanKind.CONSUMER: "CONSUMER",
}
_REMOTE_KINDS = frozenset({_span.SpanKind.CLIENT, _span.SpanKind.PRODUCER})
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_QUOTE = json.encoder.encode_basestring  # what _ENCODE uses for strings (ensure_ascii=False)
_CACHE_LIMIT = 1024
_FIELD_CACHE_LIMIT = 8192
_DECIMAL_BITS = 2000
"""Ints up to this many bits (~600 digits) are written in decimal without a second look:
under the lowest ``sys.set_int_max_str_digits`` (640). Longer ones: :func:`.text.int_text`."""
# %-formatting: cheaper than an f-string with format specs (one call, no spec parsing)
_HEAD = '{"traceId":"%032x","id":"%016x"%s,"name":%s,"timestamp":%d,"duration":%d,"localEndpoint":'
_CHILD_HEAD = (
    '{"traceId":"%032x","id":"%016x","parentId":"%016x"%s,"name":%s,"timestamp":%d'
    ',"duration":%d,"localEndpoint":'
)
_UNCACHED: Final[Any] = object()
_CACHED_VALUE_LENGTH = 256
_MASK_128 = (1 << 128) - 1
_MASK_64 = 0xFFFFFFFFFFFFFFFF
_ERROR = _span.StatusCode.ERROR
_UNSET = _span.StatusCode.UNSET
_UNSET_STATUS = _span.UNSET_STATUS  # by identity: a status read is a generic lookup (3.11)
# compared by identity: an Enum's __hash__ is Python code, too slow for two lookups a span
_SERVER = _span.SpanKind.SERVER
_CLIENT = _span.SpanKind.CLIENT
_PRODUCER = _span.SpanKind.PRODUCER
_CONSUMER = _span.SpanKind.CONSUMER
_REMOTE_TAGS = (
    "peer.service",
    "network.peer.address",
    "server.address",
    "server.port",
    "network.peer.port",
)
_REMOTE_KEYS = frozenset(_REMOTE_TAGS)
_KIND_JSON = {
    _SERVER: ',"kind":"SERVER"',
    _CLIENT: ',"kind":"CLIENT"',
    _PRODUCER: ',"kind":"PRODUCER"',
    _CONSUMER: ',"kind":"CONSUMER"',
}


class _Shape:
    """What the JSON of the spans sharing one tag block and one name has alike (for their
    kind and resource): the text around their ids, times and other tags, as %-formats."""

    __slots__ = (
        "body",
        "child_head",
        "debug_tail",
        "guard",
        "head",
        "kind",
        "resource",
        "size",
        "tail",
    )

    def __init__(
        self,
        kind: _span.SpanKind,
        resource: _span.Resource,
        head: str,
        child_head: str,
        body: str,
        guard: frozenset[str],
        size: int,
        tail: str,
        debug_tail: str,
    ) -> None:
        self.kind = kind
        self.resource = resource
        self.head = head
        """Through the times, a %-format of (trace id, span id, timestamp, duration)."""
        self.child_head = child_head
        """The same with a parent id after the span id."""
        self.body = body
        """What follows the times: the endpoints and the block's tags."""
        self.guard = guard
        """Tag keys that send a span of this shape to the general path (see :meth:`fits`)."""
        self.size = size
        """The block's tag count: the span's other tags follow it."""
        self.tail = tail
        """The resource attributes and the closing braces."""
        self.debug_tail = debug_tail

    def fits(self, tags: Mapping[str, object]) -> bool:
        """Whether a span with these tags is written as this shape: none of them is a
        resource attribute or (remote kinds) an endpoint tag outside the block, which
        the general path writes (a span tag wins over the attribute; the span's own
        remote endpoint)."""
        guard = self.guard
        return not guard or tags.keys().isdisjoint(guard)


def _port(value: object) -> int | None:
    try:
        port = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        return None
    return port if 0 < port < 65536 else None


def _plain(value: object) -> str:
    """``str(value)``, but an int too long for decimal text in hex (no ValueError)."""
    return _text.int_text(value) if type(value) is int else str(value)


class ZipkinEncoder:
    """Encodes batches as a Zipkin v2 JSON array; reuse one per reporter (small caches)."""

    __slots__ = (
        "_addresses",
        "_block_remotes",
        "_blocks",
        "_fields",
        "_last_local_json",
        "_last_resource",
        "_last_resource_tags",
        "_local",
        "_local_json",
        "_names",
        "_remote_json",
        "_shapes",
        "_truncated",
        "max_value_length",
    )

    def __init__(self, *, max_value_length: int = 32768) -> None:
        self.max_value_length = max_value_length
        self._truncated: dict[str, int] = {}
        self._local: dict[int, tuple[_span.Resource, dict[str, Any]]] = {}
        self._addresses: dict[str, tuple[str, str] | None] = {}
        self._local_json: dict[int, tuple[_span.Resource, str]] = {}
        self._remote_json: dict[tuple[tuple[object, ...], tuple[type, ...]], str] = {}
        self._names: dict[str, str] = {}
        """Span name -> its JSON string (names repeat: a route's, a method)."""
        self._fields: dict[tuple[str, object, type], str] = {}
        """(tag key, value, value type) -> ``,"key":"value"`` (see :meth:`_tags_json`)."""
        self._blocks: dict[_span.TagBlock, str | None] = {}
        """A shared tag block -> its fields joined (None: one takes the dict path)."""
        self._block_remotes: dict[_span.TagBlock, tuple[str | None, frozenset[str]]] = {}
        """A shared tag block -> the remote endpoint it makes and the endpoint tag keys
        it does not hold (see :meth:`_block_remote`)."""
        self._shapes: dict[tuple[_span.TagBlock, str], _Shape | None] = {}
        """(shared tag block, span name) -> what such spans' JSON has alike (None: such
        spans take the general path; see :meth:`_add_shaped`)."""
        self._last_resource: _span.Resource | None = None
        self._last_local_json = ""
        self._last_resource_tags: tuple[str, frozenset[str]] = ("", frozenset())
        """The last resource's tags as a JSON fragment (no braces) and their keys."""

    def encode(self, spans: Sequence[_span.Span]) -> tuple[bytes, dict[str, int]]:
        """The request body for ``spans`` and what had to be cut, by what."""
        batch = self.begin()
        batch.add(spans)
        return batch.finish()

    def begin(self) -> "ZipkinBatch":
        """An empty body to add spans to a slice at a time (see
        :func:`~gatetrace.runtime.reporting.export.encode_in_slices`)."""
        return ZipkinBatch(self)

    def _slow_text(self, span: _span.Span) -> str:
        """The span's JSON via :meth:`span_dict` (the spans the fast path leaves out)."""
        encoded = self.span_dict(span)
        try:
            return _ENCODE(encoded)
        except TypeError:  # a tag key json cannot write (tuple...): name it by str()
            if "tags" in encoded:
                encoded["tags"] = {
                    key if type(key) is str else self._text(key): value
                    for key, value in encoded["tags"].items()
                }
            return _ENCODE(encoded)

    def _add_span(self, span: _span.Span, parts: list[str]) -> bool:
        """Append the pieces of the JSON text :meth:`span_dict` would give to ``parts``, or
        return False for the uncommon shapes (logs, an error status, tag keys that are not
        ``str``, tag values to cut or of other types) that take that path. It counts and
        appends nothing before it may give up. Pieces, not one string per span: the body's
        one join sizes and copies the text once."""
        status = span.status  # the shared unset status by identity first (no field read)
        if span.logs or (status is not _UNSET_STATUS and status.code is not _UNSET):
            return False
        resource = span.resource
        block = span.shared
        shape: _Shape | None = _UNCACHED
        if block is not None:
            try:
                shape = self._shapes.get((block, span.name), _UNCACHED)
            except TypeError:  # an unhashable name: the dict path names it
                return False
            # a shape is made only for a name that needs no cut
            if (
                shape is not _UNCACHED
                and shape is not None
                and shape.resource is resource
                and shape.kind is span.kind
                and (not shape.guard or span.tags.keys().isdisjoint(shape.guard))  # fits()
            ):
                if resource is not self._last_resource:
                    self._use_resource(resource)
                return self._add_shaped(span, shape, parts)
        name = span.name
        try:
            quoted = self._names.get(name)
        except TypeError:  # an unhashable name: the dict path names it
            return False
        if quoted is None:
            if type(name) is not str or len(name) > self.max_value_length:
                return False
            quoted = self._quoted_name(name)
        # the resource's fields are made (and what they cut counted) when a span whose
        # name needs no cut is the first of another resource
        if resource is not self._last_resource:
            self._use_resource(resource)
        if block is not None and (
            shape is _UNCACHED or (shape is not None and shape.resource is not resource)
        ):
            shape = self._shape(span, block)
            if shape is not None and shape.kind is span.kind and shape.fits(span.tags):
                return self._add_shaped(span, shape, parts)
        tags = span.tags
        local = self._last_local_json
        shared, shared_keys = self._last_resource_tags
        if tags:
            # a keys view against a set walks the smaller (the set's isdisjoint walks the dict)
            if shared and not tags.keys().isdisjoint(shared_keys):
                return False  # a span tag overrides a resource attribute: the dict path
            body = self._tags_json(tags, span.shared)
            if body is None:
                return False
            if shared:
                body = f"{body},{shared}"
        else:
            body = shared
        kind = span.kind
        remote = ""
        if kind is _SERVER:
            kind_json = ',"kind":"SERVER"'
        elif kind is _CLIENT or kind is _PRODUCER:
            kind_json = ',"kind":"CLIENT"' if kind is _CLIENT else ',"kind":"PRODUCER"'
            block = span.shared
            if block is None:
                remote = self._remote_json_for(tags)
            else:  # made of the block's tags unless the span has other endpoint tags
                entry = self._block_remotes.get(block)
                if entry is None:
                    entry = self._block_remote(block)
                text, others = entry
                if text is not None and tags.keys().isdisjoint(others):
                    remote = text
                else:
                    remote = self._remote_json_for(tags)
        elif kind is _CONSUMER:
            kind_json = ',"kind":"CONSUMER"'
        else:
            kind_json = ""
        # unpacked: each NamedTuple field read is a generic attribute lookup (CPython 3.11)
        trace_id, span_id, _, debug, _, _, _, _, _ = span.context
        start = span.start_ns
        end = span.end_ns
        # at least 1 (no max(): a builtin that parses keywords costs more than the compare)
        duration = 1 if end is None else (end - start) // 1000
        if duration < 1:
            duration = 1
        parent = span.parent_id
        if parent:  # the parent id in the same format: one %-format a span
            head = _CHILD_HEAD % (
                trace_id & _MASK_128,
                span_id & _MASK_64,
                parent & _MASK_64,
                kind_json,
                quoted,
                start // 1000,
                duration,
            )
        else:
            head = _HEAD % (
                trace_id & _MASK_128,
                span_id & _MASK_64,
                kind_json,
                quoted,
                start // 1000,
                duration,
            )
        if body:
            close = '},"debug":true}' if debug else "}}"
            parts += (head, local, remote, ',"tags":{', body, close)
        else:
            parts += (head, local, remote, ',"debug":true}' if debug else "}")
        return True

    def _use_resource(self, resource: _span.Resource) -> None:
        """Make ``resource`` the one whose endpoint and attribute fields are at hand."""
        self._last_local_json = self._local_endpoint_json(resource)
        self._last_resource_tags = self._resource_tags_json(resource)
        self._last_resource = resource

    def _add_shaped(self, span: _span.Span, shape: "_Shape", parts: list[str]) -> bool:
        """:meth:`_add_span` for a span of a known shape: its head and tail are the
        shape's, with its ids and times filled in, and only the tags after the block are
        written one by one (the span :meth:`_Shape.fits`). Appends nothing when it gives up
        (a tag value the general path gives up on too)."""
        tags = span.tags
        trace_id, span_id, _, debug, _, _, _, _, _ = span.context
        start = span.start_ns
        end = span.end_ns
        duration = 1 if end is None else (end - start) // 1000
        if duration < 1:
            duration = 1
        parent = span.parent_id
        mark = len(parts)
        if parent:
            head = shape.child_head % (
                trace_id & _MASK_128,
                span_id & _MASK_64,
                parent & _MASK_64,
                start // 1000,
                duration,
            )
        else:
            head = shape.head % (trace_id & _MASK_128, span_id & _MASK_64, start // 1000, duration)
        parts += (head, shape.body)
        size = shape.size
        if len(tags) > size:
            fields = self._fields
            for key, value in islice(tags.items(), size, None):
                try:
                    field = fields.get((key, value, type(value)))
                except Exception:  # an unhashable value (a list, a memoryview): the dict path
                    del parts[mark:]
                    return False
                if field is None:
                    field = self._field(key, value)
                    if field is None:
                        del parts[mark:]
                        return False
                parts.append(field)
        parts.append(shape.debug_tail if debug else shape.tail)
        return True

    def _shape(self, span: _span.Span, block: _span.TagBlock) -> "_Shape | None":
        """What the JSON of spans sharing ``block`` and named as ``span`` has alike, for the
        span's kind and resource (the current one: :meth:`_use_resource`), or
        None when such spans take the general path (a block value to cut, a block key that
        is also a resource attribute); cached. Called once the name is known to need no
        cut (:meth:`_add_span` checked it)."""
        name = span.name
        kind = span.kind
        shape: _Shape | None = None
        fragment = self._blocks.get(block, _UNCACHED)
        if fragment is _UNCACHED:
            fragment = self._block_json(block)
        resource_json, resource_keys = self._last_resource_tags
        guard = resource_keys
        remote: str | None = ""
        kind_json = _KIND_JSON.get(kind, "") if type(kind) is _span.SpanKind else None
        if kind is _CLIENT or kind is _PRODUCER:
            entry = self._block_remotes.get(block)
            if entry is None:
                entry = self._block_remote(block)
            remote, others = entry
            guard = guard | others
        if (
            fragment is not None
            and remote is not None
            and kind_json is not None
            and block.keys.isdisjoint(resource_keys)
        ):
            # the %-formats end with the times; the text after them is a piece of its own
            # (a %-format walks its template character by character, a join copies)
            named = f'{kind_json},"name":{_QUOTE(name)}'.replace("%", "%%")
            times = f'{named},"timestamp":%d,"duration":%d'
            tail = f",{resource_json}" if resource_json else ""
            shape = _Shape(
                kind,
                span.resource,
                '{"traceId":"%032x","id":"%016x"' + times,
                '{"traceId":"%032x","id":"%016x","parentId":"%016x"' + times,
                f',"localEndpoint":{self._last_local_json}{remote},"tags":{{{fragment}',
                guard,
                block.size,
                tail + "}}",
                tail + '},"debug":true}',
            )
        shapes = self._shapes
        if len(shapes) >= _CACHE_LIMIT:
            shapes.clear()
        shapes[(block, name)] = shape
        return shape

    def _quoted_name(self, name: str) -> str:
        """``name`` as a JSON string, cached when short (spans are named by route)."""
        quoted: str = _QUOTE(name)
        if len(name) <= _CACHED_VALUE_LENGTH:
            names = self._names
            if len(names) >= _CACHE_LIMIT:
                names.clear()
            names[name] = quoted
        return quoted

    def _tags_json(self, tags: Mapping[str, object], shared: _span.TagBlock | None) -> str | None:
        """The tags' ``"key":"value"`` fields, comma-separated, for tags of the common
        types, or None (see :meth:`_add_span`). Each field comes from a cache keyed by key,
        value and value type (``True``, ``1`` and ``1.0`` stay apart), as the OTLP encoder
        caches its attribute fields: most tag values of a route repeat. The tags a span
        shares with others (``shared``, the block ``tags`` begins with) are one fragment,
        cached per block."""
        fields = self._fields
        items = tags.items()
        if shared is None:
            out = []
        else:
            fragment = self._blocks.get(shared, _UNCACHED)
            if fragment is _UNCACHED:
                fragment = self._block_json(shared)
            if fragment is None:
                return None
            out = [fragment]
            items = islice(items, len(shared.items), None)  # type: ignore[assignment]
        for key, value in items:
            try:
                field = fields.get((key, value, type(value)))
            except Exception:  # an unhashable value (a list...): not a common shape
                return None
            if field is None:
                field = self._field(key, value)
                if field is None:
                    return None
            out.append(field)
        # the fields start with their comma: none before the block's fragment or the first
        return "".join(out) if shared is not None else "".join(out)[1:]

    def _block_json(self, block: _span.TagBlock) -> str | None:
        """The block's ``"key":"value"`` fields joined, or None when one of them takes the
        dict path (a string over the value limit); cached per block."""
        out: list[str] = []
        fragment: str | None = None
        for key, value in block.items:
            field = self._field(key, value)
            if field is None:
                break
            out.append(field)
        else:
            fragment = "".join(out)[1:]  # the first field's comma
        blocks = self._blocks
        if len(blocks) >= _CACHE_LIMIT:
            blocks.clear()
        blocks[block] = fragment
        return fragment

    def _field(self, key: object, value: object) -> str | None:
        """``,"key":"value"`` (with its comma: the fields follow a block or one another)
        for a str key and a value of a common type that needs no cut (cached unless a
        float or a long string), or None."""
        if type(key) is not str:
            return None
        kind = type(value)
        if kind is str:
            if len(value) > self.max_value_length:  # type: ignore[arg-type]
                return None
            text = _QUOTE(value)  # type: ignore[arg-type]
        elif kind is bool:
            text = '"true"' if value else '"false"'
        elif kind is float or (kind is int and value.bit_length() <= _DECIMAL_BITS):  # type: ignore[attr-defined]
            text = f'"{value}"'
        else:
            return None  # other types; an int too long for decimal text: the dict path
        field = "," + _QUOTE(key) + ":" + text
        if kind is not float and (kind is not str or len(value) <= _CACHED_VALUE_LENGTH):  # type: ignore[arg-type]
            fields = self._fields
            if len(fields) >= _FIELD_CACHE_LIMIT:
                fields.clear()
            fields[(key, value, kind)] = field
        return field

    def _resource_tags_json(self, resource: _span.Resource) -> tuple[str, frozenset[str]]:
        """The resource's attributes as tags: a JSON fragment and its keys."""
        converted = self._resource_tags(resource)
        fragment = _ENCODE(converted)[1:-1] if converted else ""
        return fragment, frozenset(converted)

    def _resource_tags(self, resource: _span.Resource) -> dict[str, str]:
        return {
            key if type(key) is str else self._text(key): self._text(value)
            for key, value in resource.tags
            if key != "service.name"
        }

    def _local_endpoint_json(self, resource: _span.Resource) -> str:
        cached = self._local_json.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        text = _ENCODE(self._local_endpoint(resource))
        if len(self._local_json) > 64:
            self._local_json.clear()
        self._local_json[id(resource)] = (resource, text)
        return text

    def _remote_json_for(self, tags: Mapping[str, object]) -> str:
        """``,"remoteEndpoint":{...}`` (or ``""``), cached by the tags it is made of and
        their types (``True == 1`` and ``1 == 1.0`` must not share an entry) when they are
        None, ints or strings short enough that nothing is cut or counted."""
        values = tuple(map(tags.get, _REMOTE_TAGS))
        key = (values, tuple(map(type, values)))
        cached = self._remote_json.get(key)
        if cached is not None:
            return cached
        remote = self._remote_endpoint(tags)
        text = "" if remote is None else ',"remoteEndpoint":' + _ENCODE(remote)
        limit = self.max_value_length
        for value in values:
            kind = type(value)
            if not (value is None or kind is int or (kind is str and len(value) <= limit)):  # type: ignore[arg-type]
                return text  # bools, floats, long strings: rare here, not worth an entry
        if len(self._remote_json) > _CACHE_LIMIT:
            self._remote_json.clear()
        self._remote_json[key] = text
        return text

    def _block_remote(self, block: _span.TagBlock) -> tuple[str | None, frozenset[str]]:
        """The remote endpoint a span sharing ``block`` has when the block holds every
        endpoint tag of the span (the other endpoint keys: absent from the span's tags),
        None when making it cut or counted something (then each span makes its own)."""
        counted = self._truncated
        scratch: dict[str, int] = {}
        self._truncated = scratch
        try:
            text = self._remote_json_for(block.tags)
        finally:
            self._truncated = counted
        entry = (None if scratch else text, _REMOTE_KEYS - block.keys)
        remotes = self._block_remotes
        if len(remotes) >= _CACHE_LIMIT:
            remotes.clear()
        remotes[block] = entry
        return entry

    def _count(self, what: str) -> None:
        self._truncated[what] = self._truncated.get(what, 0) + 1

    def _text(self, value: object) -> str:
        kind = type(value)
        if kind is str:
            text: str = value  # type: ignore[assignment]
        elif kind is bool:
            return "true" if value else "false"
        elif kind is float:
            return str(value)
        elif kind is int:
            if value.bit_length() <= _DECIMAL_BITS:  # type: ignore[attr-defined]
                return str(value)
            text = _text.int_text(value)  # type: ignore[arg-type]
            if text.startswith(("0x", "-0x")):
                self._count("value_type")
        elif isinstance(value, str | int | float):
            text = str.__str__(value) if isinstance(value, str) else repr(value)
        else:
            self._count("value_type")
            text = str(value)
        if len(text) > self.max_value_length:
            self._count("value_length")
            return text[: self.max_value_length]
        return text

    def _address(self, text: str) -> tuple[str, str] | None:
        """("ipv4" | "ipv6", normalised address) for an IP literal, else None."""
        try:
            return self._addresses[text]
        except KeyError:
            pass
        try:
            ip = ipaddress.ip_address(text)
            found: tuple[str, str] | None = ("ipv4" if ip.version == 4 else "ipv6", str(ip))
        except ValueError:
            found = None
        if len(self._addresses) > _CACHE_LIMIT:
            self._addresses.clear()
        self._addresses[text] = found
        return found

    def _local_endpoint(self, resource: _span.Resource) -> dict[str, Any]:
        cached = self._local.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        tags = dict(resource.tags)
        endpoint: dict[str, Any] = {"serviceName": self._text(resource.service_name)}
        for key in ("ip", "host.ip"):
            address = self._address(_plain(tags.get(key, "")))
            if address is not None:
                endpoint[address[0]] = address[1]
                break
        for key in ("port", "host.port"):
            port = _port(tags.get(key))
            if port is not None:
                endpoint["port"] = port
                break
        if len(self._local) > 64:
            self._local.clear()
        self._local[id(resource)] = (resource, endpoint)
        return endpoint

    def _remote_endpoint(self, tags: Mapping[str, object]) -> dict[str, Any] | None:
        endpoint: dict[str, Any] = {}
        service = tags.get("peer.service")
        if service:
            endpoint["serviceName"] = self._text(service)
        server_address = tags.get("server.address")
        for value in (tags.get("network.peer.address"), server_address):
            address = self._address(_plain(value)) if value else None
            if address is not None:
                endpoint[address[0]] = address[1]
                break
        if (
            server_address
            and "serviceName" not in endpoint
            and self._address(_plain(server_address)) is None
        ):
            endpoint["serviceName"] = self._text(server_address)
        for key in ("server.port", "network.peer.port"):
            port = _port(tags.get(key))
            if port is not None:
                endpoint["port"] = port
                break
        return endpoint or None

    def span_dict(self, span: _span.Span) -> dict[str, Any]:
        """The Zipkin v2 JSON object of one span (also the ``log`` reporter's line)."""
        ctx = span.context
        start = span.start_ns
        end = span.end_ns if span.end_ns is not None else start
        out: dict[str, Any] = {
            "traceId": f"{ctx.trace_id & ((1 << 128) - 1):032x}",
            "id": f"{ctx.span_id & 0xFFFFFFFFFFFFFFFF:016x}",
        }
        if span.parent_id:
            out["parentId"] = f"{span.parent_id & 0xFFFFFFFFFFFFFFFF:016x}"
        kind = _KIND.get(span.kind)
        if kind is not None:
            out["kind"] = kind
        out["name"] = self._text(span.name)
        out["timestamp"] = start // 1000
        out["duration"] = max((end - start) // 1000, 1)
        out["localEndpoint"] = self._local_endpoint(span.resource)
        tags = span.tags
        if span.kind in _REMOTE_KINDS:
            remote = self._remote_endpoint(tags)
            if remote is not None:
                out["remoteEndpoint"] = remote
        if span.logs:
            out["annotations"] = [self._annotation(log) for log in span.logs]
        text = self._text
        limit = self.max_value_length
        converted: dict[str, str] = {}
        for key, value in tags.items():
            value_type = type(value)
            if value_type is str:
                converted[key] = value if len(value) <= limit else text(value)  # type: ignore[arg-type,assignment]
            elif value_type is bool:
                converted[key] = "true" if value else "false"
            elif value_type is float:
                converted[key] = str(value)
            else:  # ints (one too long for decimal text goes to hex), other types
                converted[key] = text(value)
        for key, text_value in self._resource_tags(span.resource).items():
            converted.setdefault(key, text_value)  # the span's own tag wins
        status = span.status
        if status.code is _ERROR:
            converted["otel.status_code"] = "ERROR"
            converted["error"] = text(status.description)
        elif status.code is _span.StatusCode.OK:
            converted["otel.status_code"] = "OK"
        if converted:
            out["tags"] = converted
        if ctx.debug:
            out["debug"] = True
        return out

    def _annotation(self, log: _span.LogRecord) -> dict[str, Any]:
        fields = log.fields
        name = fields.get("event")
        if type(name) is str and len(fields) == 1:
            value = self._text(name)
        elif type(name) is str:
            attributes = {self._text(k): self._json_value(v) for k, v in fields.items()}
            del attributes["event"]
            value = _ENCODE({self._text(name): attributes})
        else:
            value = _ENCODE({self._text(k): self._json_value(v) for k, v in fields.items()})
        return {"timestamp": log.timestamp_ns // 1000, "value": value}

    def _json_value(self, value: object) -> object:
        if type(value) is bool or (type(value) is int and value.bit_length() <= _DECIMAL_BITS):
            return value
        if type(value) is float and math.isfinite(value):  # NaN/Infinity are not JSON
            return value
        return self._text(value)


class ZipkinBatch:
    """One request body being encoded: :meth:`add` slices of spans, then :meth:`finish`.
    The same bytes as one :meth:`ZipkinEncoder.encode` of all of them."""

    __slots__ = ("encoder", "parts", "truncated")

    def __init__(self, encoder: ZipkinEncoder) -> None:
        self.encoder = encoder
        self.parts: list[str] = ["["]
        """The body's pieces: ``[``, then each span's pieces followed by ``,``."""
        self.truncated: dict[str, int] = {}

    def add(self, spans: Sequence[_span.Span]) -> None:
        encoder = self.encoder
        encoder._truncated = self.truncated
        fast = encoder._add_span
        parts = self.parts
        append = parts.append
        for span in spans:
            if not fast(span, parts):
                append(encoder._slow_text(span))
            append(",")

    def finish(self) -> tuple[bytes, dict[str, int]]:
        parts = self.parts
        if len(parts) > 1:
            parts[-1] = "]"  # the last span's comma
        else:
            parts.append("]")
        text = "".join(parts)
        try:
            body = text.encode()
        except UnicodeEncodeError:
            self.encoder._truncated = self.truncated
            self.encoder._count("invalid_utf8")
            body = _text.utf8_replacing(text)
        return body, self.truncated
