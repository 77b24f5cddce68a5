"""xtrace: the legacy X-Trace-Id / X-Span-Id / X-Sampled / X-Baggage-* headers."""

import pytest
from proptools import SPAN_ID, TRACE_ID, context, counter, counts, extract, inject

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import xtrace

T32 = f"{TRACE_ID:032x}"
S16 = f"{SPAN_ID:016x}"


@pytest.mark.parametrize(
    ("headers", "trace_id", "sampled"),
    [
        ({"X-Trace-Id": T32, "X-Span-Id": S16}, TRACE_ID, None),
        ({"x-trace-id": T32.upper(), "x-span-id": S16.upper(), "x-sampled": "1"}, TRACE_ID, True),
        ({"X-Trace-Id": T32[16:], "X-Span-Id": S16, "X-Sampled": "TRUE"}, int(T32[16:], 16), True),
        ({"X-Trace-Id": T32, "X-Span-Id": S16, "X-Sampled": "0"}, TRACE_ID, False),
        ({"X-Trace-Id": T32, "X-Span-Id": S16, "X-Sampled": " false "}, TRACE_ID, False),
    ],
)
def test_extract_valid(headers: dict[str, str], trace_id: int, sampled: bool | None) -> None:
    found = extract(xtrace.XTracePropagator(), headers)
    assert found.context == _sc.SpanContext(trace_id, SPAN_ID, sampled, remote=True)
    assert found.format == "xtrace"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Trace-Id": "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "X-Span-Id": S16}, "trace_id"),
        ({"X-Trace-Id": "0" * 32, "X-Span-Id": S16}, "trace_id"),
        ({"X-Trace-Id": T32[:20], "X-Span-Id": S16}, "trace_id"),
        ({"X-Trace-Id": T32}, "span_id"),
        ({"X-Trace-Id": T32, "X-Span-Id": S16[:8]}, "span_id"),
        ({"X-Trace-Id": T32, "X-Span-Id": "g" * 16}, "span_id"),
    ],
)
def test_extract_invalid_ids(headers: dict[str, str], reason: str) -> None:
    failures = counter()
    assert extract(xtrace.XTracePropagator(failures), headers).context is None
    assert counts(failures) == {("xtrace", reason): 1}


def test_bad_sampled_dropped_alone() -> None:
    failures = counter()
    found = extract(
        xtrace.XTracePropagator(failures), {"X-Trace-Id": T32, "X-Span-Id": S16, "X-Sampled": "yes"}
    )
    assert found.context is not None and found.context.sampled is None
    assert counts(failures) == {("xtrace", "sampled"): 1}


def test_repeated_trace_id_invalid() -> None:
    failures = counter()
    found = extract(
        xtrace.XTracePropagator(failures),
        [("X-Trace-Id", T32), ("X-Trace-Id", T32), ("X-Span-Id", S16)],
    )
    assert found.context is None
    assert counts(failures) == {("xtrace", "duplicate"): 1}


def test_repeated_sampled_dropped_alone() -> None:
    failures = counter()
    found = extract(
        xtrace.XTracePropagator(failures),
        [("X-Trace-Id", T32), ("X-Span-Id", S16), ("X-Sampled", "1"), ("x-sampled", "0")],
    )
    assert found.context is not None and found.context.sampled is None
    assert counts(failures) == {("xtrace", "duplicate"): 1}


def test_baggage_headers() -> None:
    found = extract(
        xtrace.XTracePropagator(),
        {"X-Baggage-Tenant-Id": "acme%2Fco", "x-baggage-plain": "v", "X-Baggage-": "empty key"},
    )
    assert dict(found.baggage) == {"tenant-id": "acme/co", "plain": "v"}


@pytest.mark.parametrize(
    ("sampled", "debug", "extra"),
    [
        (True, False, {"X-Sampled": "1"}),
        (False, False, {"X-Sampled": "0"}),
        (None, False, {}),
        (None, True, {"X-Sampled": "1"}),
    ],
)
def test_inject(sampled: bool | None, debug: bool, extra: dict[str, str]) -> None:
    bag = _baggage.Baggage.from_values({"tenant": "a b"}) if sampled else _baggage.EMPTY_BAGGAGE
    carrier = inject(xtrace.XTracePropagator(), context(sampled=sampled, debug=debug, baggage=bag))
    expected = {"X-Trace-Id": T32, "X-Span-Id": S16, **extra}
    if sampled:
        expected["X-Baggage-tenant"] = "a%20b"
    assert carrier == expected
