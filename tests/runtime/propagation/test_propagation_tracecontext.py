"""tracecontext: traceparent parsing and writing, tracestate handling, counted failures."""

from typing import Any

import pytest
from proptools import GETTER, SPAN_ID, TRACE_ID, context, counter, counts, extract, inject

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import failures, tracecontext, tracestate

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _propagator() -> tuple[tracecontext.TraceContextPropagator, failures.MetricsFailureCounter]:
    failures = counter()
    return tracecontext.TraceContextPropagator(failures), failures


class TestExtract:
    def test_valid_header_gives_a_remote_context(self) -> None:
        found = extract(tracecontext.TraceContextPropagator(), {"traceparent": VALID})
        assert found.context == _sc.SpanContext(TRACE_ID, SPAN_ID, True, remote=True)
        assert found.format == "tracecontext"

    def test_fast_path_context_equals_the_normal_constructor(self) -> None:
        found = extract(tracecontext.TraceContextPropagator(), {"traceparent": VALID})
        assert found.context is not None
        assert type(found.context) is _sc.SpanContext
        assert tuple(found.context) == tuple(_sc.SpanContext(TRACE_ID, SPAN_ID, True, remote=True))

    @pytest.mark.parametrize(
        ("flags", "sampled", "random"),
        [
            ("00", False, False),
            ("01", True, False),
            ("02", False, True),
            ("03", True, True),
            ("ff", True, True),
            ("fc", False, False),
        ],
    )
    def test_flags_sampled_and_random_bits(self, flags: str, sampled: bool, random: bool) -> None:
        header = VALID[:-2] + flags
        found = extract(tracecontext.TraceContextPropagator(), {"traceparent": header})
        assert found.context is not None
        assert (found.context.sampled, found.context.random) == (sampled, random)

    def test_header_name_is_case_insensitive(self) -> None:
        for name in ("TraceParent", "TRACEPARENT", "tRaCePaReNt"):
            found = extract(tracecontext.TraceContextPropagator(), {name: VALID})
            assert found.context is not None and found.context.trace_id == TRACE_ID
            found = extract(tracecontext.TraceContextPropagator(), [(name, VALID)])
            assert found.context is not None and found.context.trace_id == TRACE_ID

    @pytest.mark.parametrize(
        ("header", "reason"),
        [
            ("ff" + VALID[2:], "version"),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "trace_id"),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "span_id"),
            (VALID.upper(), "format"),
            (VALID + "-extra", "format"),
            ("cc" + VALID[2:] + ".x", "format"),
            (VALID[:-1], "format"),
            ("", "format"),
            ("0" * 513, "too_long"),
        ],
    )
    def test_rejections_are_counted_by_reason(self, header: str, reason: str) -> None:
        propagator, failures = _propagator()
        assert extract(propagator, {"traceparent": header}).context is None
        assert counts(failures) == {("tracecontext", reason): 1}

    def test_duplicated_traceparent_is_invalid_and_its_tracestate_ignored(self) -> None:
        propagator, failures = _propagator()
        found = extract(
            propagator, [("traceparent", VALID), ("traceparent", VALID), ("tracestate", "a=1")]
        )
        assert found.context is None
        assert counts(failures) == {("tracecontext", "duplicate"): 1}

    def test_tracestate_is_attached_and_combined_in_order(self) -> None:
        found = extract(
            tracecontext.TraceContextPropagator(),
            [("traceparent", VALID), ("tracestate", "a=1,b=2"), ("TraceState", "c@d=3")],
        )
        assert found.context is not None
        assert found.context.trace_state == (("a", "1"), ("b", "2"), ("c@d", "3"))

    def test_bad_tracestate_is_dropped_but_traceparent_kept(self) -> None:
        propagator, failures = _propagator()
        found = extract(propagator, {"traceparent": VALID, "tracestate": "a=1,A=2"})
        assert found.context is not None and found.context.trace_state == ()
        assert counts(failures) == {("tracecontext", "tracestate_member"): 1}

    def test_huge_tracestate_rejected_before_splitting(self) -> None:
        propagator, failures = _propagator()
        found = extract(propagator, {"traceparent": VALID, "tracestate": "a=1," * 10_000})
        assert found.context is not None and found.context.trace_state == ()
        assert counts(failures) == {("tracecontext", "tracestate_too_long"): 1}

    def test_first_context_wins(self) -> None:
        first = extract(tracecontext.TraceContextPropagator(), {"traceparent": VALID})
        other = VALID.replace("4bf9", "1111")
        again = tracecontext.TraceContextPropagator().extract({"traceparent": other}, GETTER, first)
        assert again is first


class TestInject:
    @pytest.mark.parametrize(
        ("sampled", "random", "flags"),
        [
            (True, False, "01"),
            (False, False, "00"),
            (None, False, "00"),
            (True, True, "03"),
            (None, True, "02"),
        ],
    )
    def test_flags(self, sampled: bool | None, random: bool, flags: str) -> None:
        carrier = inject(
            tracecontext.TraceContextPropagator(), context(sampled=sampled, random=random)
        )
        assert carrier == {"traceparent": VALID[:-2] + flags}

    def test_invalid_context_writes_nothing(self) -> None:
        propagator, failures = _propagator()
        for bad in (
            context(trace_id=0),
            context(span_id=0),
            context(trace_id=1 << 128),
            context(span_id=-1),
        ):
            assert inject(propagator, bad) == {}
        assert counts(failures) == {("tracecontext", "inject_invalid_context"): 4}

    def test_tracestate_written_and_invalid_members_dropped(self) -> None:
        propagator, failures = _propagator()
        state = (("a", "1"), ("BAD", "x"), ("a", "dup"), ("b@c", "v w"))
        carrier = inject(propagator, context(trace_state=state))
        assert carrier["tracestate"] == "a=1,b@c=v w"
        assert counts(failures) == {("tracecontext", "tracestate_truncated"): 1}

    def test_non_text_members_dropped_not_raised(self) -> None:
        state: Any = ((1, "x"), ("a", None), ("b", "2"))
        carrier = inject(tracecontext.TraceContextPropagator(), context(trace_state=state))
        assert carrier["tracestate"] == "b=2"

    def test_empty_tracestate_not_written(self) -> None:
        assert "tracestate" not in inject(tracecontext.TraceContextPropagator(), context())


class TestTracestateTruncation:
    def test_fits_untouched(self) -> None:
        members = tuple((f"k{i}", "v" * 10) for i in range(32))
        text, dropped = tracestate.format_members(members, 512)
        assert not dropped and text.count(",") == 31

    def test_large_members_go_first_from_the_right(self) -> None:
        big = "x" * 200
        members = (("a", big), ("b", "1"), ("c", big), ("d", "2"), ("e", big))
        text, dropped = tracestate.format_members(members, 400)
        # 616 chars: e goes first (right-most large member; 413 left), then c (210 left)
        assert dropped
        assert text == f"a={big},b=1,d=2"

    def test_then_members_from_the_right(self) -> None:
        members = tuple((f"k{i:02d}", "v" * 20) for i in range(32))
        text, dropped = tracestate.format_members(members, 100)
        assert dropped and len(text) <= 100
        assert text.startswith("k00=") and text.split(",")[-1].startswith("k03=")

    def test_more_than_32_members_never_written(self) -> None:
        members = tuple((f"k{i}", "1") for i in range(40))
        text, dropped = tracestate.format_members(members, 10_000)
        assert dropped and text.count(",") == 31
