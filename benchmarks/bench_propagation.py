"""Extract + inject of a W3C ``traceparent``: gatetrace against OpenTelemetry, same run.

Both sides read a plain dict carrier holding one ``traceparent`` and write the
extracted context into a fresh dict, the way a gateway hop does. Goal: ours at
most 0.5x OpenTelemetry's ``TraceContextTextMapPropagator``. Run:
``.venv/bin/python benchmarks/bench_propagation.py``.
"""

import timeit
from collections.abc import Callable

from opentelemetry.trace.propagation import tracecontext as otel_tracecontext

from gatetrace.runtime.propagation import base, tracecontext

HEADER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
GOAL = 0.5


def _ours() -> Callable[[], None]:
    propagator = tracecontext.TraceContextPropagator()
    getter, setter, empty = base.DictGetter(), base.DictSetter(), base.EMPTY
    carrier = {"traceparent": HEADER}

    def op() -> None:
        found = propagator.extract(carrier, getter, empty)
        assert found.context is not None
        propagator.inject(found.context, {}, setter)

    return op


def _otel() -> Callable[[], None]:
    propagator = otel_tracecontext.TraceContextTextMapPropagator()
    carrier = {"traceparent": HEADER}

    def op() -> None:
        context = propagator.extract(carrier)
        propagator.inject({}, context)

    return op


def _per_op_us(op: Callable[[], None], number: int, repeat: int) -> float:
    return min(timeit.repeat(op, number=number, repeat=repeat)) / number * 1e6


def measure(number: int = 20_000, repeat: int = 7) -> tuple[float, float]:
    """(ours, OpenTelemetry's) µs per extract+inject, interleaved so both see the same load."""
    ours_op, otel_op = _ours(), _otel()
    ours = otel = float("inf")
    for _ in range(repeat):
        ours = min(ours, _per_op_us(ours_op, number, 1))
        otel = min(otel, _per_op_us(otel_op, number, 1))
    return ours, otel


def main() -> None:
    ours, otel = measure()
    ratio = ours / otel
    verdict = "ok" if ratio <= GOAL else "SLOWER THAN GOAL"
    print("traceparent extract+inject (µs/op)")
    print(f"  gatetrace      {ours:8.3f}")
    print(f"  opentelemetry  {otel:8.3f}")
    print(f"  ratio          {ratio:8.3f}  (goal <= {GOAL}: {verdict})")


if __name__ == "__main__":
    main()
