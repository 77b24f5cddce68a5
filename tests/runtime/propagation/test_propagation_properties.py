"""Property tests: every format round-trips what it carries and never raises on any input."""

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proptools import GETTER, SETTER, contexts, counter, extract, inject

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import baggage as w3c
from gatetrace.runtime.propagation import base, composite, tracestate

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL = list(composite.FORMATS)


def _build(name: str, failures: Any = base.IGNORE_FAILURES) -> base.Propagator:
    return composite.FORMATS[name](failures, base.DEFAULT_BAGGAGE_LIMITS)


def _carried(name: str, ctx: _sc.SpanContext) -> tuple[Any, ...]:
    """What format ``name`` can carry of ``ctx``: (ids, sampled, debug, random, state, baggage)."""
    ids = (ctx.trace_id, ctx.span_id)
    if name == "tracecontext":
        return (ids, bool(ctx.sampled), False, ctx.random, ctx.trace_state, None)
    if name == "baggage":
        return (None, None, False, False, (), ctx.baggage or None)
    if name in ("b3", "b3multi"):
        return (ids, True if ctx.debug else ctx.sampled, ctx.debug, False, (), None)
    if name == "jaeger":
        return (ids, ctx.debug or bool(ctx.sampled), ctx.debug, False, (), ctx.baggage or None)
    assert name == "xtrace"
    return (ids, True if ctx.debug else ctx.sampled, False, False, (), ctx.baggage or None)


def _seen(found: base.Extracted) -> tuple[Any, ...]:
    ctx = found.context
    bag = found.baggage or None
    if ctx is None:
        return (None, None, False, False, (), bag)
    ids = (ctx.trace_id, ctx.span_id)
    return (ids, ctx.sampled, ctx.debug, ctx.random, ctx.trace_state, bag)


@SETTINGS
@given(ctx=contexts(), name=st.sampled_from(ALL))
def test_every_format_round_trips_what_it_carries(ctx: _sc.SpanContext, name: str) -> None:
    failures = counter()
    propagator = _build(name, failures)
    carrier = inject(propagator, ctx)
    found = extract(propagator, carrier)
    assert _seen(found) == _carried(name, ctx)
    if found.context is not None:
        assert found.context.remote and found.format == name
    assert failures.counter.total() == 0


@SETTINGS
@given(ctx=contexts())
def test_composite_round_trip_through_every_format(ctx: _sc.SpanContext) -> None:
    propagator = composite.build_propagator(ALL, ALL, None)
    carrier = inject(propagator, ctx)
    found = extract(propagator, carrier)
    assert found.context is not None
    assert found.format == "tracecontext"
    assert (found.context.trace_id, found.context.span_id) == (ctx.trace_id, ctx.span_id)
    assert found.context.trace_state == ctx.trace_state
    assert found.baggage == ctx.baggage
    assert found.context.baggage == ctx.baggage


# --- hostile input ------------------------------------------------------------------------

_HEADER_NAMES = sorted(
    {f for name in ALL for f in _build(name).fields}
    | {"uberctx-k", "x-baggage-k", "jaeger-debug-id", "TraceParent", "B3", "UBER-TRACE-ID"}
)
_junk = st.one_of(
    st.text(max_size=80),
    st.text("0123456789abcdefABCDEF-:;,=%@ \t", max_size=120),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(0, 70_000)),
    st.sampled_from(
        [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d-00f067aa0ba902b7",
            "4bf92f3577b34da6a3ce929d0e0e4736%3A00f067aa0ba902b7%3A0%3A1",
            "k=%E2%82,j=%,l=%%%",
        ]
    ),
)
_carriers = st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), _junk), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=_carriers, name=st.sampled_from(ALL))
def test_extract_never_raises_on_any_header_text(pairs: list[tuple[str, str]], name: str) -> None:
    propagator = _build(name, counter())
    found = extract(propagator, pairs)  # multi-valued carrier
    assert isinstance(found, base.Extracted)
    as_dict = dict(pairs)
    found = extract(propagator, as_dict)
    if found.context is not None and found.context.trace_id:
        assert found.context.is_valid


_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]")
_odd_ids = st.one_of(st.integers(), st.integers(-1, 1), st.just(1 << 128), st.just(1 << 64))
_odd_state = st.lists(st.tuples(st.text(max_size=300), st.text(max_size=300)), max_size=40).map(
    tuple
)
_odd_baggage = st.dictionaries(
    st.text(max_size=20),
    st.tuples(st.text(max_size=200), st.text(max_size=20)),
    max_size=80,
).map(lambda d: _baggage.Baggage({k: _baggage.BaggageEntry(*v) for k, v in d.items()}))


def _printable_ascii(text: str) -> bool:
    return all(0x20 <= ord(c) < 0x7F for c in text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace_id=_odd_ids,
    span_id=_odd_ids,
    sampled=st.sampled_from([True, False, None]),
    state=_odd_state,
    bag=_odd_baggage,
    name=st.sampled_from(ALL),
)
def test_inject_never_raises_and_only_writes_valid_headers(
    trace_id: int, span_id: int, sampled: bool | None, state: Any, bag: _baggage.Baggage, name: str
) -> None:
    ctx = _sc.SpanContext(trace_id, span_id, sampled, trace_state=state, baggage=bag)
    carrier: dict[str, str] = {}
    _build(name, counter()).inject(ctx, carrier, SETTER)
    for key, value in carrier.items():
        assert _printable_ascii(key) and _printable_ascii(value), (key, value)
    if "traceparent" in carrier:
        assert _TRACEPARENT.fullmatch(carrier["traceparent"])
    if "tracestate" in carrier:
        members, reason = tracestate.parse([carrier["tracestate"]])
        assert not reason and members and len(carrier["tracestate"]) <= 512
    if "baggage" in carrier:
        header = carrier["baggage"]
        assert len(header) <= 8192 and len(header.split(",")) <= 64
        for member in header.split(","):
            assert w3c.parse_member(member) is not None
    # whatever we wrote, we read back without a single counted failure
    failures = counter()
    _build(name, failures).extract(carrier, GETTER, base.EMPTY)
    assert failures.counter.total() == 0
