"""Shared helpers for the propagation tests: carriers, a real failure counter, strategies."""

from collections.abc import Iterable
from typing import Any

import multidict
from hypothesis import strategies as st

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import metrics
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base, failures

GETTER = base.DictGetter()
MULTI_GETTER = base.MultiDictGetter()
SETTER = base.DictSetter()

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def counter() -> failures.MetricsFailureCounter:
    """A failure counter backed by a fresh metrics registry."""
    return failures.MetricsFailureCounter(metrics.Registry())


def counts(counter: failures.MetricsFailureCounter) -> dict[tuple[str, ...], float]:
    return dict(counter.counter.items())


def extract(propagator: Any, carrier: Any) -> base.Extracted:
    """Extract from a dict, or from a list of (name, value) pairs as a multi-valued carrier."""
    if isinstance(carrier, list):
        result: base.Extracted = propagator.extract(
            multidict.CIMultiDict(carrier), MULTI_GETTER, base.EMPTY
        )
        return result
    result = propagator.extract(carrier, GETTER, base.EMPTY)
    return result


def inject(propagator: Any, context: _sc.SpanContext) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagator.inject(context, carrier, SETTER)
    return carrier


def context(**fields: Any) -> _sc.SpanContext:
    values: dict[str, Any] = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "sampled": True}
    values.update(fields)
    return _sc.SpanContext(**values)


def pairs(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(headers)


# --- hypothesis strategies -------------------------------------------------------------

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
span_ids = st.integers(min_value=1, max_value=(1 << 64) - 1)
decisions = st.sampled_from([True, False, None])

_KEY_TAIL = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
_simple_keys = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text(_KEY_TAIL, max_size=20),
)
_tenant_keys = st.builds(
    lambda tenant, first, rest: f"{tenant}@{first}{rest}",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text(_KEY_TAIL, max_size=6),
)
_state_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=",="),
    min_size=1,
    max_size=24,
).filter(lambda v: not v.endswith(" "))
trace_states = st.lists(
    st.tuples(st.one_of(_simple_keys, _tenant_keys), _state_values),
    max_size=6,
    unique_by=lambda member: member[0],
).map(tuple)

baggage_keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=16)
"""Lowercase tokens: they survive header-name case folding in uberctx-/X-Baggage-."""
baggage_values = st.text(st.characters(codec="utf-8"), max_size=24)
baggages = st.dictionaries(baggage_keys, baggage_values, max_size=6).map(
    _baggage.Baggage.from_values
)


@st.composite
def contexts(
    draw: st.DrawFn, with_state: bool = True, with_baggage: bool = True
) -> _sc.SpanContext:
    return _sc.SpanContext(
        draw(trace_ids),
        draw(span_ids),
        draw(decisions),
        draw(st.booleans()),
        draw(st.booleans()),
        False,
        draw(trace_states) if with_state else (),
        draw(baggages) if with_baggage else _baggage.EMPTY_BAGGAGE,
    )
