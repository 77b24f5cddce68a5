"""The zipkin encoder's fast path writes exactly the bytes of its ``span_dict`` path.

:meth:`ZipkinEncoder.encode` writes common spans straight to JSON text and
caches key, endpoint and remote-endpoint fragments; every span it writes must
give the same bytes as ``json`` over :meth:`ZipkinEncoder.span_dict`, whatever
the order spans come in (warm caches) and whatever the tag types.
"""

import enum
import json
import random

from reportertools import RESOURCE, finished_span

from gatetrace.runtime import span
from gatetrace.runtime.reporting import zipkin_encoding

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_KEYS = (
    "http.method",
    "server.address",
    "server.port",
    "network.peer.address",
    "network.peer.port",
    "peer.service",
    'k"quoted',
    "ü",
)
_VALUES: tuple[span.TagValue, ...] = (
    "GET",
    'http://x/y?q="a"\\b',
    "ü ☃ \u2028 \x01",
    "x" * 40,
    "",
    True,
    False,
    0,
    1,
    -5,
    10**30,
    1.0,
    1.5,
    1e16,
    float("nan"),
    "127.0.0.1",
    "::1",
    "db.local",
    9411,
    70000,
)


class _Text(str):
    pass


class _Level(enum.IntEnum):
    HIGH = 3


# subclasses and unhashable values: the dict path, same bytes
_VALUES += (_Text("sub"), _Level.HIGH, [1, "x"])  # type: ignore[assignment]
_OTHER_RESOURCE = span.Resource("other", (("ip", "::1"), ("port", 9000)))


def _random_spans(seed: int, count: int) -> list[span.Span]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        tags = {rng.choice(_KEYS): rng.choice(_VALUES) for _ in range(rng.randrange(0, 7))}
        out.append(
            finished_span(
                rng.choice(["GET", 'n"ame', "ü"]),
                kind=rng.choice(list(span.SpanKind)),
                tags=tags,
                trace_id=rng.getrandbits(rng.choice([64, 128])),
                parent_id=rng.choice([None, 0, rng.getrandbits(64)]),
                debug=rng.random() < 0.2,
                resource=rng.choice([RESOURCE, _OTHER_RESOURCE]),
                duration_ns=rng.choice([0, 999, 12_345_678]),
            )
        )
    return out


def _reference(encoder: zipkin_encoding.ZipkinEncoder, spans: list[span.Span]) -> bytes:
    return _DUMPS([encoder.span_dict(s) for s in spans]).encode()


def test_fast_path_matches_span_dict_with_warm_caches() -> None:
    spans = _random_spans(seed=11, count=600)
    encoder = zipkin_encoding.ZipkinEncoder()
    for start in range(0, len(spans), 50):
        batch = spans[start : start + 50]
        body, truncated = encoder.encode(batch)
        reference = zipkin_encoding.ZipkinEncoder()
        assert body == _reference(reference, batch)
        assert truncated == reference._truncated  # (lists are written with str(), counted)
    body, _ = encoder.encode(spans)  # every cache warm now
    assert body == _reference(zipkin_encoding.ZipkinEncoder(), spans)


def test_remote_endpoint_cache_keeps_equal_values_of_other_types_apart() -> None:
    encoder = zipkin_encoding.ZipkinEncoder()
    outputs = []
    for service in (1, True, 1.0, "1"):
        client = finished_span(kind=span.SpanKind.CLIENT, tags={"peer.service": service})
        (out,) = json.loads(encoder.encode([client])[0])
        outputs.append(out["remoteEndpoint"]["serviceName"])
    assert outputs == ["1", "true", "1.0", "1"]


def test_long_values_leave_the_fast_path_and_are_counted_every_time() -> None:
    encoder = zipkin_encoding.ZipkinEncoder(max_value_length=4)
    client = finished_span(
        "GET",
        kind=span.SpanKind.CLIENT,
        tags={"server.address": "db.example"},
        resource=span.Resource("gw"),
    )
    for _ in range(2):
        body, truncated = encoder.encode([client])
        (out,) = json.loads(body)
        assert truncated == {"value_length": 2}  # the tag and the remote service name
        assert out["tags"]["server.address"] == "db.e"
        assert out["remoteEndpoint"] == {"serviceName": "db.e"}


def test_non_finite_port_tags_are_ignored() -> None:
    client = finished_span(
        kind=span.SpanKind.CLIENT, tags={"server.address": "10.0.0.1", "server.port": float("inf")}
    )
    (out,) = json.loads(zipkin_encoding.ZipkinEncoder().encode([client])[0])
    assert out["remoteEndpoint"] == {"ipv4": "10.0.0.1"}
    assert out["tags"]["server.port"] == "inf"
