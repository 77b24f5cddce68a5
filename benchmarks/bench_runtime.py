"""The runtime's hot paths against the OpenTelemetry Python SDK, same process, same run.

Rows (µs per operation, best of alternating :mod:`timeit` rounds):

* ``span: start + 6 tags + finish``: a root span on a tracer whose sampler
  samples everything and whose span processor does nothing, six attributes
  of mixed types, finished -- vs a ``TracerProvider`` (default sampler,
  a no-op ``SpanProcessor``) doing the same.
* ``span as current``: the same inside ``start_as_current`` (the active span
  set in the context and restored) vs OpenTelemetry's ``start_as_current_span``.

Both sides do the same work: our spans are started without a ``parent``, so,
like OpenTelemetry's, they look the parent up in the context (none is active);
and every tag goes through :func:`_set_checked`, the check OpenTelemetry's
``set_attribute`` makes on each attribute (a non-empty ``str`` key, a value of a
type every exporter encodes; anything else dropped). Our runtime's ``set_tag``
trusts its caller's types (the gateway builds its tag values itself) and has no
checking variant, so the benchmark makes the check at the call site.
* ``sampling decision``: :class:`ProbabilisticSampler` (including building
  its ``SamplingParams``, as the tracer does) vs ``TraceIdRatioBased.should_sample``,
  both at rate 0.25 over the same 1,024 trace ids.
* ``traceparent extract + inject``: taken from ``bench_propagation.measure()``
  while that module does not provide rows of its own.

Goal for every row: ours <= 0.5x the peer. Run all benchmarks with
``python -m benchmarks``, or only this one with ``python -m benchmarks.bench_runtime``.
"""

import importlib
import itertools
import random
from collections.abc import Callable

from opentelemetry.sdk import trace as otel_trace
from opentelemetry.sdk.trace import sampling as otel_sampling

from benchmarks import common
from gatetrace.runtime import span as _span
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.sampling import base as _sampling_base
from gatetrace.runtime.sampling import probabilistic

GOAL = 0.5
PEER = "opentelemetry-sdk"
TAGS: tuple[tuple[str, str | int | bool | float], ...] = (
    ("http.method", "GET"),
    ("http.route", "/api/users/{id}"),
    ("http.status_code", 200),
    ("net.peer.ip", "10.1.2.3"),
    ("retry", False),
    ("upstream.duration_ms", 12.5),
)


_TAG_TYPES = (str, bool, int, float)


def _set_checked(span: _span.Span, key: str, value: _span.TagValue) -> None:
    """``set_tag`` after the check OpenTelemetry's ``set_attribute`` makes (its
    ``_clean_attribute``): the key a non-empty ``str``, the value a ``str``, ``bool``,
    ``int`` or ``float``; a bad one is dropped, as OpenTelemetry drops it."""
    if not (key and isinstance(key, str)) or not isinstance(value, _TAG_TYPES):
        return
    span.set_tag(key, value)


class _NoopProcessor:
    def on_end(self, span: _span.Span) -> None:
        pass


class _OtelNoopProcessor(otel_trace.SpanProcessor):
    """OpenTelemetry's base SpanProcessor already does nothing; named for clarity."""


def _span_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    tracer = _tracer.Tracer(_span.Resource("bench"), processor=_NoopProcessor())
    provider = otel_trace.TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(_OtelNoopProcessor())
    otel = provider.get_tracer("bench")
    (k1, v1), (k2, v2), (k3, v3), (k4, v4), (k5, v5), (k6, v6) = TAGS

    def ours() -> None:
        span = tracer.start_span("GET /api/users/{id}")  # the parent from the context
        _set_checked(span, k1, v1)
        _set_checked(span, k2, v2)
        _set_checked(span, k3, v3)
        _set_checked(span, k4, v4)
        _set_checked(span, k5, v5)
        _set_checked(span, k6, v6)
        span.finish()

    def peer() -> None:
        span = otel.start_span("GET /api/users/{id}")
        span.set_attribute(k1, v1)
        span.set_attribute(k2, v2)
        span.set_attribute(k3, v3)
        span.set_attribute(k4, v4)
        span.set_attribute(k5, v5)
        span.set_attribute(k6, v6)
        span.end()

    return ours, peer


def _current_span_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    tracer = _tracer.Tracer(_span.Resource("bench"), processor=_NoopProcessor())
    provider = otel_trace.TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(_OtelNoopProcessor())
    otel = provider.get_tracer("bench")
    tags = dict(TAGS)

    def ours() -> None:
        with tracer.start_as_current("GET /api/users/{id}") as span:  # parent from context
            for key, value in tags.items():
                _set_checked(span, key, value)

    def peer() -> None:
        with otel.start_as_current_span("GET /api/users/{id}") as span:
            span.set_attributes(tags)

    return ours, peer


def _sampling_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    rng = random.Random(42)
    trace_ids = [rng.getrandbits(128) or 1 for _ in range(1024)]
    ours_ids, peer_ids = itertools.cycle(trace_ids), itertools.cycle(trace_ids)
    sampler = probabilistic.ProbabilisticSampler(0.25)
    otel = otel_sampling.TraceIdRatioBased(0.25)
    params = _sampling_base.SamplingParams
    kind = _span.SpanKind.SERVER

    def ours() -> None:
        sampler.should_sample(params(next(ours_ids), "GET /", kind, None, None))

    def peer() -> None:
        otel.should_sample(None, next(peer_ids), "GET /")

    return ours, peer


def _propagation_row() -> common.Row | None:
    try:
        module = importlib.import_module("benchmarks.bench_propagation")
    except ImportError:  # the propagation benchmark is not there (yet)
        return None
    if hasattr(module, "run"):  # it reports its own rows; do not duplicate them
        return None
    ours, peer = module.measure()
    return common.Row("traceparent extract + inject", ours, peer, "us", GOAL, "opentelemetry-api")


def run() -> list[common.Row]:
    rows = []
    for name, pair, number in (
        ("span: start + 6 tags + finish (no-op processor)", _span_pair, 20_000),
        ("span as current: start_as_current + 6 tags", _current_span_pair, 20_000),
        ("sampling decision: probabilistic vs TraceIdRatioBased", _sampling_pair, 100_000),
    ):
        ours, peer = common.compare(*pair(), number=number)
        rows.append(common.Row(name, ours, peer, "us", GOAL, PEER))
    propagation = _propagation_row()
    if propagation is not None:
        rows.append(propagation)
    return rows


def main() -> None:
    for row in run():
        verdict = "ok" if row.met else "MISSED"
        print(
            f"{row.name:<56} ours {row.ours:7.3f} {row.unit}  peer {row.peer:7.3f} {row.unit}"
            f"  ratio {row.ratio:5.2f} (goal <= {row.goal_ratio}) {verdict}"
        )


if __name__ == "__main__":
    main()
