"""Propagation: gatetrace against OpenTelemetry's propagators, measured in the same run.

Rows (goal: ours at most 0.5x the peer's per-operation time):

* ``traceparent extract + inject (dict)``: a plain dict carrier holding one
  ``traceparent``, the context written into a fresh dict, against
  ``TraceContextTextMapPropagator`` with its default getter;
* ``traceparent extract + inject (aiohttp headers)``: the gateway's real
  carrier, a ``CIMultiDictProxy`` of a dozen typical request headers;
* ``composite: tracecontext+baggage+b3 extract, tracecontext+baggage inject``:
  the DESIGN.md example config against OpenTelemetry's ``CompositePropagator``
  of the same formats, with three baggage members.

Run alone: ``.venv/bin/python -m benchmarks.bench_propagation``; with the
others: ``make bench``.
"""

from collections.abc import Callable

import multidict
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator as OtelComposite
from opentelemetry.trace.propagation import tracecontext as otel_tracecontext

from benchmarks import common
from gatetrace.runtime.propagation import base, composite, tracecontext

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
GOAL = 0.5
PEER = "opentelemetry-api 1.27"
Pair = tuple[Callable[[], None], Callable[[], None]]

_GATEWAY_HEADERS = [
    ("Host", "shop.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Connection", "keep-alive"),
    ("Content-Type", "application/json"),
    ("Content-Length", "42"),
    ("X-Request-Id", "5f0c7c6e-1c1a-4c55-9d0e-8a4f0f1c9a11"),
    ("X-Forwarded-For", "10.1.2.3"),
    ("Traceparent", TRACEPARENT),
    ("Cookie", "session=abc123"),
]


def _traceparent_dict() -> Pair:
    ours_p = tracecontext.TraceContextPropagator()
    getter, setter, empty = base.DictGetter(), base.DictSetter(), base.EMPTY
    otel_p = otel_tracecontext.TraceContextTextMapPropagator()
    carrier = {"traceparent": TRACEPARENT}

    def ours() -> None:
        found = ours_p.extract(carrier, getter, empty)
        assert found.context is not None
        ours_p.inject(found.context, {}, setter)

    def peer() -> None:
        otel_p.inject({}, otel_p.extract(carrier))

    return ours, peer


def _traceparent_aiohttp() -> Pair:
    ours_p = tracecontext.TraceContextPropagator()
    getter, setter, empty = base.MultiDictGetter(), base.DictSetter(), base.EMPTY
    otel_p = otel_tracecontext.TraceContextTextMapPropagator()
    carrier = multidict.CIMultiDictProxy(multidict.CIMultiDict(_GATEWAY_HEADERS))

    def ours() -> None:
        found = ours_p.extract(carrier, getter, empty)
        assert found.context is not None
        ours_p.inject(found.context, {}, setter)

    def peer() -> None:
        otel_p.inject({}, otel_p.extract(carrier))

    return ours, peer


def _composite() -> Pair:
    ours_p = composite.build_propagator(
        ["tracecontext", "baggage", "b3multi"], ["tracecontext", "baggage"], None
    )
    getter, setter = base.DictGetter(), base.DictSetter()
    otel_extract = OtelComposite(
        [
            otel_tracecontext.TraceContextTextMapPropagator(),
            W3CBaggagePropagator(),
            B3MultiFormat(),
        ]
    )
    otel_inject = OtelComposite(
        [otel_tracecontext.TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    )
    carrier = {
        "traceparent": TRACEPARENT,
        "baggage": "tenant-id=acme,region=eu-west-1,plan=gold",
    }

    def ours() -> None:
        found = ours_p.extract(carrier, getter)
        assert found.context is not None
        ours_p.inject(found.context, {}, setter)

    def peer() -> None:
        otel_inject.inject({}, otel_extract.extract(carrier))

    return ours, peer


def measure(number: int = 20_000, repeat: int = 7) -> tuple[float, float]:
    """(ours, OpenTelemetry's) µs per traceparent extract+inject on a dict carrier."""
    return common.compare(*_traceparent_dict(), number=number, repeat=repeat)


def run() -> list[common.Row]:
    rows = []
    for name, pair in (
        ("traceparent extract + inject (dict)", _traceparent_dict),
        ("traceparent extract + inject (aiohttp headers)", _traceparent_aiohttp),
        ("composite: tracecontext+baggage+b3multi / tracecontext+baggage", _composite),
    ):
        ours, peer = common.compare(*pair(), number=20_000)
        rows.append(common.Row(name, ours, peer, "us", GOAL, PEER))
    return rows


def main() -> None:
    for row in run():
        verdict = "ok" if row.met else "MISSED"
        print(
            f"{row.name}: gatetrace {row.ours:.3f} µs, opentelemetry {row.peer:.3f} µs, "
            f"ratio {row.ratio:.2f} (goal <= {row.goal_ratio:g}: {verdict})"
        )


if __name__ == "__main__":
    main()
