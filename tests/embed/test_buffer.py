"""The retro buffer: bounded by bytes and age, whole traces evicted oldest first, counted."""

from gatetrace.embed import buffer
from gatetrace.runtime import metrics, span_size
from gatetrace.runtime import tracer as _tracer
from gatetrace.runtime.span import Resource, Span


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _span(tracer: _tracer.Tracer, trace_id: int | None = None) -> Span:
    from gatetrace.runtime import spancontext

    parent = spancontext.SpanContext(trace_id or 1, 7, sampled=True) if trace_id else None
    span = tracer.start_span("op", parent=parent)
    span.set_tag("payload", "x" * 100)
    span.finish()
    return span


def _setup(
    max_bytes: int = 1 << 20, age: float = 30.0
) -> tuple[buffer.RetroBuffer, Clock, metrics.Registry, list[Span]]:
    clock = Clock()
    registry = metrics.Registry()
    retro = buffer.RetroBuffer(
        max_bytes=max_bytes, max_age_seconds=age, registry=registry, clock=clock
    )
    exported: list[Span] = []
    retro.export = lambda span, reason: exported.append(span)
    return retro, clock, registry, exported


def _evicted(registry: metrics.Registry, reason: str) -> str:
    return f'gatetrace_retro_spans_evicted_total{{reason="{reason}"}}'


def test_a_kept_trace_exports_its_spans_once_with_the_reason() -> None:
    retro, _clock, _registry, exported = _setup()
    tracer = _tracer.Tracer(Resource("s"))
    first, second, other = _span(tracer, 5), _span(tracer, 5), _span(tracer, 6)
    for span in (first, second, other):
        retro.on_end(span)
    assert retro.keep(5, "error") == 2
    assert exported == [first, second]
    assert first.tags["sampling.priority.reason"] == "error"
    assert retro.keep(5, "error") == 0  # a repeated keep exports nothing twice
    assert len(retro) == 1 and retro.bytes == span_size.retained_bytes(other)


def test_spans_arriving_after_the_keep_go_straight_out() -> None:
    retro, _clock, _registry, exported = _setup()
    tracer = _tracer.Tracer(Resource("s"))
    assert retro.keep(9, "slow") == 0
    late = _span(tracer, 9)
    retro.on_end(late)
    assert exported == [late] and retro.bytes == 0


def test_the_byte_bound_evicts_whole_traces_oldest_first_and_counts_them() -> None:
    tracer = _tracer.Tracer(Resource("s"))
    one = span_size.retained_bytes(_span(tracer, 1))
    retro, clock, registry, _exported = _setup(max_bytes=3 * one)
    for trace_id in (1, 1, 2, 3):
        clock.now += 1
        retro.on_end(_span(tracer, trace_id))
    assert retro.bytes <= 3 * one
    assert retro.keep(1, "error") == 0  # the oldest trace went, both its spans
    assert retro.keep(2, "error") == 1 and retro.keep(3, "error") == 1
    text = metrics.render_prometheus([registry])
    assert _evicted(registry, "bytes") + " 2" in text


def test_the_age_bound_expires_traces_nobody_kept() -> None:
    retro, clock, registry, exported = _setup(age=30.0)
    tracer = _tracer.Tracer(Resource("s"))
    retro.on_end(_span(tracer, 1))
    clock.now += 31
    retro.on_end(_span(tracer, 2))
    assert retro.keep(1, "error") == 0 and exported == []
    assert _evicted(registry, "age") + " 1" in metrics.render_prometheus([registry])
    assert retro.keep(2, "error") == 1


def test_bounds_must_be_positive() -> None:
    import pytest

    with pytest.raises(ValueError, match="maxBufferBytes=0"):
        buffer.RetroBuffer(max_bytes=0, max_age_seconds=1)
