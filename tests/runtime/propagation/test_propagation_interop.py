"""Interop with OpenTelemetry's own propagators: what we inject they extract, and back.

Peers: opentelemetry-api/sdk's TraceContextTextMapPropagator and
W3CBaggagePropagator, opentelemetry-propagator-b3's B3SingleFormat and
B3MultiFormat, opentelemetry-propagator-jaeger's JaegerPropagator. Where a peer
departs from the wire format we say so in the test that pins it down.
"""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace as otel_trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.jaeger import JaegerPropagator as OtelJaeger
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from proptools import decisions, extract, inject, span_ids, trace_ids, trace_states

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import b3, b3multi, jaeger, tracecontext
from gatetrace.runtime.propagation import baggage as w3c

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# OpenTelemetry URL-encodes keys with quote_plus and strips decoded values, so the
# shared ground is: keys quote_plus leaves alone, values without edge whitespace.
_interop_keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
_interop_values = st.text(st.characters(codec="utf-8"), max_size=20).filter(
    lambda v: v == v.strip()
)
_interop_baggage = st.dictionaries(_interop_keys, _interop_values, min_size=1, max_size=6)


def _otel_context(
    trace_id: int, span_id: int, flags: int, state: Any = (), bag: dict[str, str] | None = None
) -> Context:
    span_context = otel_trace.SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=otel_trace.TraceFlags(flags),
        trace_state=otel_trace.TraceState(list(state)),
    )
    ctx = otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(span_context))
    for key, value in (bag or {}).items():
        ctx = otel_baggage.set_baggage(key, value, context=ctx)
    return ctx


def _otel_span(ctx: Context) -> otel_trace.SpanContext:
    return otel_trace.get_current_span(ctx).get_span_context()


# --- W3C trace context ---------------------------------------------------------------------


@SETTINGS
@given(trace_ids, span_ids, decisions, st.booleans(), trace_states)
def test_tracecontext_ours_to_otel(
    trace_id: int, span_id: int, sampled: bool | None, random: bool, state: Any
) -> None:
    ours = _sc.SpanContext(trace_id, span_id, sampled, False, random, trace_state=state)
    carrier = inject(tracecontext.TraceContextPropagator(), ours)
    theirs = _otel_span(TraceContextTextMapPropagator().extract(carrier))
    assert (theirs.trace_id, theirs.span_id) == (trace_id, span_id)
    assert int(theirs.trace_flags) == (1 if sampled else 0) | (2 if random else 0)
    assert list(theirs.trace_state.items()) == list(state)


@SETTINGS
@given(trace_ids, span_ids, st.integers(0, 3), trace_states)
def test_tracecontext_otel_to_ours(trace_id: int, span_id: int, flags: int, state: Any) -> None:
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, _otel_context(trace_id, span_id, flags, state))
    found = extract(tracecontext.TraceContextPropagator(), carrier)
    assert found.context is not None
    assert (found.context.trace_id, found.context.span_id) == (trace_id, span_id)
    assert (found.context.sampled, found.context.random) == (bool(flags & 1), bool(flags & 2))
    assert found.context.trace_state == state


def test_tracecontext_both_reject_the_same_bad_headers() -> None:
    for header in (
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ):
        theirs = _otel_span(TraceContextTextMapPropagator().extract({"traceparent": header}))
        assert not theirs.is_valid
        assert (
            extract(tracecontext.TraceContextPropagator(), {"traceparent": header}).context is None
        )


# --- W3C baggage ---------------------------------------------------------------------------


@SETTINGS
@given(_interop_baggage)
def test_baggage_ours_to_otel(values: dict[str, str]) -> None:
    ours = _sc.SpanContext(1, 1, True, baggage=_baggage.Baggage.from_values(values))
    carrier = inject(w3c.BaggagePropagator(), ours)
    assert dict(otel_baggage.get_all(W3CBaggagePropagator().extract(carrier))) == values


@SETTINGS
@given(_interop_baggage.map(lambda d: {k: v.replace(" ", "") for k, v in d.items()}))
def test_baggage_otel_to_ours(values: dict[str, str]) -> None:
    carrier: dict[str, str] = {}
    W3CBaggagePropagator().inject(carrier, _otel_context(1, 1, 1, bag=values))
    found = extract(w3c.BaggagePropagator(), carrier)
    assert dict(found.baggage) == values


def test_baggage_otel_writes_spaces_as_plus_which_w3c_reads_as_plus() -> None:
    """OpenTelemetry encodes with quote_plus; in W3C baggage ``+`` is a literal plus."""
    carrier: dict[str, str] = {}
    W3CBaggagePropagator().inject(carrier, _otel_context(1, 1, 1, bag={"k": "a b"}))
    assert carrier == {"baggage": "k=a+b"}
    assert dict(extract(w3c.BaggagePropagator(), carrier).baggage) == {"k": "a+b"}
    ours = inject(
        w3c.BaggagePropagator(),
        _sc.SpanContext(1, 1, baggage=_baggage.Baggage.from_values({"k": "a b"})),
    )
    assert ours == {"baggage": "k=a%20b"}  # which both read as "a b"
    assert dict(otel_baggage.get_all(W3CBaggagePropagator().extract(ours))) == {"k": "a b"}


# --- B3 ------------------------------------------------------------------------------------


@SETTINGS
@given(trace_ids, span_ids, decisions, st.booleans(), st.sampled_from(["single", "multi"]))
def test_b3_ours_to_otel(
    trace_id: int, span_id: int, sampled: bool | None, debug: bool, form: str
) -> None:
    ours = _sc.SpanContext(trace_id, span_id, sampled, debug)
    propagator = b3.B3Propagator() if form == "single" else b3multi.B3MultiPropagator()
    peer = B3SingleFormat() if form == "single" else B3MultiFormat()
    theirs = _otel_span(peer.extract(inject(propagator, ours)))
    assert (theirs.trace_id, theirs.span_id) == (trace_id, span_id)
    # OpenTelemetry has no deferred decision: it reads an absent one as "sampled" in the
    # single header and as "not sampled" in the multi-header form
    deferred_reads_as = form == "single"
    expected = True if debug else (deferred_reads_as if sampled is None else sampled)
    assert theirs.trace_flags.sampled == expected


@SETTINGS
@given(trace_ids, span_ids, st.booleans(), st.sampled_from(["single", "multi"]))
def test_b3_otel_to_ours(trace_id: int, span_id: int, sampled: bool, form: str) -> None:
    peer = B3SingleFormat() if form == "single" else B3MultiFormat()
    propagator = b3.B3Propagator() if form == "single" else b3multi.B3MultiPropagator()
    carrier: dict[str, str] = {}
    peer.inject(carrier, _otel_context(trace_id, span_id, int(sampled)))
    found = extract(propagator, carrier)
    assert found.context == _sc.SpanContext(trace_id, span_id, sampled, remote=True)


def test_b3_debug_and_deny_read_alike() -> None:
    header = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d"
    assert _otel_span(B3SingleFormat().extract({"b3": header})).trace_flags.sampled
    found = extract(b3.B3Propagator(), {"b3": header})
    assert found.context is not None and found.context.sampled and found.context.debug
    assert not _otel_span(B3SingleFormat().extract({"b3": "0"})).is_valid
    assert extract(b3.B3Propagator(), {"b3": "0"}).sampled is False


# --- Jaeger --------------------------------------------------------------------------------


@SETTINGS
@given(trace_ids, span_ids, decisions, st.booleans(), _interop_baggage)
def test_jaeger_ours_to_otel(
    trace_id: int, span_id: int, sampled: bool | None, debug: bool, values: dict[str, str]
) -> None:
    bag = _baggage.Baggage.from_values(values)
    carrier = inject(
        jaeger.JaegerPropagator(), _sc.SpanContext(trace_id, span_id, sampled, debug, baggage=bag)
    )
    ctx = OtelJaeger().extract(carrier)
    theirs = _otel_span(ctx)
    assert (theirs.trace_id, theirs.span_id) == (trace_id, span_id)
    assert theirs.trace_flags.sampled == bool(debug or sampled)
    assert dict(otel_baggage.get_all(ctx)) == values


@SETTINGS
@given(trace_ids, span_ids, st.booleans(), _interop_baggage)
def test_jaeger_otel_to_ours(
    trace_id: int, span_id: int, sampled: bool, values: dict[str, str]
) -> None:
    carrier: dict[str, str] = {}
    OtelJaeger().inject(carrier, _otel_context(trace_id, span_id, int(sampled), bag=values))
    found = extract(jaeger.JaegerPropagator(), carrier)
    assert found.context is not None
    assert (found.context.trace_id, found.context.span_id) == (trace_id, span_id)
    assert found.context.sampled == sampled
    # OpenTelemetry sets Jaeger's debug bit on every sampled context it writes
    assert found.context.debug == sampled
    assert dict(found.baggage) == values
