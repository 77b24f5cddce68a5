"""Encoders write a span's shared tag block (``Span.shared``) as one cached fragment: the
bytes and the cut counts must be exactly those of the same span without it, whatever was
set over the block afterwards, with warm caches and with blocks that need cutting."""

import random

import pytest
from reportertools import RESOURCE, finished_span

from gatetrace.runtime import span
from gatetrace.runtime.reporting import otlp_encoding, zipkin_encoding

_BLOCKS = (
    span.TagBlock([("http.request.method", "GET"), ("server.address", "db"), ("server.port", 80)]),
    span.TagBlock([("http.request.method", "GET"), ("server.port", True)]),  # True, not 1
    span.TagBlock([("server.port", 1), ("ratio", 1.0), ("q", 'a"b\\c ü \u2028 \x01')]),
    span.TagBlock([("long", "x" * 40), ("service.version", "2")]),  # a resource key below
    span.TagBlock([("lone", "\ud800"), ("big", 1 << 70), ("neg", -(1 << 63) - 1)]),
    span.TagBlock([("server.address", "db.internal.example"), ("server.port", 5432)]),
    span.TagBlock([("server.address", "10.0.0.9"), ("peer.service", "users")]),
)
_KEYS = (
    "server.port",
    "http.request.method",
    "url.path",
    "long",
    "tls",
    "ratio",
    "big",
    "network.peer.address",  # a remote endpoint tag a block does not hold
    "peer.service",
)
_VALUES: tuple[span.TagValue, ...] = (
    "x",
    "y" * 30,
    7,
    True,
    2.5,
    "\ud800",
    1 << 64,
    ["not", "hashable"],  # type: ignore[assignment]
)
# the encoders' per-(block, name) templates are %-formats: names with "%" of their own
_NAMES = ("GET", "GET /a%d", "100% %s %%", 'say "hi"', "a-name-longer-than-twelve")
_RESOURCES = (RESOURCE, span.Resource("gw", (("service.version", "1"), ("ip", "10.0.0.1"))))


def _pair(rng: random.Random) -> tuple[span.Span, span.Span]:
    """A span that shares a block, then had tags set and adopted over it, and its twin
    built from its final tags without a block."""
    kind = rng.choice(list(span.SpanKind))
    resource = rng.choice(_RESOURCES)
    name = rng.choice(_NAMES)
    parent_id = rng.choice((None, rng.getrandbits(64) or 1))
    debug = rng.random() < 0.2
    before = {rng.choice(_KEYS): rng.choice(_VALUES) for _ in range(rng.randrange(3))}
    shared = finished_span(
        name, kind=kind, tags=before, resource=resource, parent_id=parent_id, debug=debug
    )
    end_ns = shared.end_ns
    shared.end_ns = None
    shared.share(rng.choice(_BLOCKS))
    for _ in range(rng.randrange(4)):
        if rng.random() < 0.5:
            shared.set_tag(rng.choice(_KEYS), rng.choice(_VALUES))
        else:
            shared.adopt_tags({rng.choice(_KEYS): rng.choice(_VALUES)})
    shared.end_ns = end_ns
    ctx = shared.context
    twin = finished_span(
        name,
        kind=kind,
        parent_id=parent_id,
        debug=debug,
        tags=dict(shared.tags),
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        start_ns=shared.start_ns,
        duration_ns=(end_ns or 0) - shared.start_ns,
        resource=resource,
    )
    assert twin.shared is None and list(twin.tags.items()) == list(shared.tags.items())
    return shared, twin


@pytest.mark.parametrize("limit", [32768, 12, 4])
@pytest.mark.parametrize(
    "make",
    [
        lambda limit: zipkin_encoding.ZipkinEncoder(max_value_length=limit),
        lambda limit: otlp_encoding.OtlpEncoder(max_value_length=limit),
    ],
    ids=["zipkin", "otlp"],
)
def test_a_shared_block_encodes_as_the_same_span_without_it(limit: int, make: object) -> None:
    rng = random.Random(limit)
    pairs = [_pair(rng) for _ in range(400)]
    assert sum(s.shared is not None for s, _ in pairs) > 100  # most still share theirs
    # two encoders in step (resources are cached and counted once per encoder)
    encoder, twin_encoder = make(limit), make(limit)  # type: ignore[operator]
    for start in range(0, len(pairs), 40):
        chunk = pairs[start : start + 40]
        body, truncated = encoder.encode([s for s, _ in chunk])
        want, want_truncated = twin_encoder.encode([t for _, t in chunk])
        assert body == want
        assert truncated == want_truncated  # every span counts its own cuts
    body, _ = encoder.encode([s for s, _ in pairs])  # every cache warm
    assert body == twin_encoder.encode([t for _, t in pairs])[0]
    if isinstance(encoder, zipkin_encoding.ZipkinEncoder):  # its templates were used
        shapes = sum(shape is not None for shape in encoder._shapes.values())
        assert shapes >= (10 if limit >= 12 else 1)  # at 4 most blocks need cutting


def test_a_block_that_needs_cutting_is_counted_for_every_span() -> None:
    block = span.TagBlock([("server.address", "db.example"), ("a.long.key", 1)])
    spans, twins = [], []
    for _ in range(3):
        s = finished_span("GET", kind=span.SpanKind.CLIENT, resource=span.Resource("gw"))
        s.end_ns, end = None, s.end_ns
        s.share(block)
        s.end_ns = end
        assert s.shared is block
        spans.append(s)
        twins.append(
            finished_span(
                "GET",
                kind=span.SpanKind.CLIENT,
                resource=span.Resource("gw"),
                tags=dict(s.tags),
                trace_id=s.trace_id,
                span_id=s.span_id,
            )
        )
    for make in (zipkin_encoding.ZipkinEncoder, otlp_encoding.OtlpEncoder):
        encoder, twin_encoder = make(max_value_length=4), make(max_value_length=4)
        twin_encoder.encode(twins)  # the resource: cut and counted once per encoder
        encoder.encode(spans)
        for _ in range(2):  # warm caches count the same, for every span
            body, truncated = encoder.encode(spans)
            assert (body, truncated) == twin_encoder.encode(twins)
            assert truncated["value_length"] >= 6  # at least the address of each span


_CUT_RESOURCE = span.Resource("gw", (("ip", "10.0.0.1"),))  # cut at 4: "10.0"


def _sharing(name: str, block: span.TagBlock, tags: dict[str, span.TagValue]) -> span.Span:
    s = finished_span(name, kind=span.SpanKind.CLIENT, resource=_CUT_RESOURCE)
    s.end_ns, end = None, s.end_ns
    s.share(block)
    s.adopt_tags(tags)
    s.end_ns = end
    assert s.shared is block
    return s


def test_zipkin_counts_a_resource_cut_as_before_whichever_path_a_shared_span_takes() -> None:
    """The resource's cut fields are made and counted once when a span of the general path
    first uses it; a span the dict path writes counts its own cuts (as before templates)."""
    block = span.TagBlock([("a", "v")])
    encoder = zipkin_encoding.ZipkinEncoder(max_value_length=4)
    # a name to cut: the dict path, which counts the name and the resource's address
    _, truncated = encoder.encode([_sharing("GET /x", block, {})])
    assert truncated == {"value_length": 2}
    # the span's own remote endpoint tag: the general path, the resource counted once
    encoder = zipkin_encoding.ZipkinEncoder(max_value_length=4)
    spans = [_sharing("GET", block, {"peer.service": "svc"}) for _ in range(2)]
    _, truncated = encoder.encode(spans)
    assert truncated == {"value_length": 1}


def test_zipkin_writes_a_shared_span_whose_tag_cannot_be_hashed_by_the_dict_path() -> None:
    """A writable memoryview's hash raises ValueError (not TypeError): written with str()
    and counted, as without a block, never an exception out of encode."""
    block = span.TagBlock([("a", "v")])
    encoder = zipkin_encoding.ZipkinEncoder()
    encoder.encode([_sharing("GET", block, {})])  # the template is cached
    value = memoryview(bytearray(b"x"))
    body, truncated = encoder.encode([_sharing("GET", block, {"body": value})])  # type: ignore[dict-item]
    assert b'"body":"<memory at' in body
    assert truncated == {"value_type": 1}


def test_zipkin_treats_an_explicitly_unset_status_as_unset() -> None:
    """``set_status(UNSET)`` makes a new Status object: still the template path, so the
    resource's cuts are counted once per encoder as for the shared unset status."""
    block = span.TagBlock([("a", "v")])
    encoder = zipkin_encoding.ZipkinEncoder(max_value_length=4)
    spans = []
    for _ in range(3):
        s = _sharing("GET", block, {})
        s.status = span.Status(span.StatusCode.UNSET)
        spans.append(s)
    _, truncated = encoder.encode(spans)
    assert truncated == {"value_length": 1}
