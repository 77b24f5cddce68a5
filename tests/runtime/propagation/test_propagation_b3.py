"""B3 single header and B3 multi-header: ids, sampling states, debug, deny-only."""

import pytest
from proptools import SPAN_ID, TRACE_ID, context, counter, counts, extract, inject

from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import b3, b3multi

T32 = f"{TRACE_ID:032x}"
T16 = "a3ce929d0e0e4736"
S16 = f"{SPAN_ID:016x}"
P16 = "05e3ac9a4f6e3b90"


class TestSingle:
    @pytest.mark.parametrize(
        ("value", "trace_id", "sampled", "debug"),
        [
            (f"{T32}-{S16}", TRACE_ID, None, False),
            (f"{T32}-{S16}-1", TRACE_ID, True, False),
            (f"{T32}-{S16}-0", TRACE_ID, False, False),
            (f"{T32}-{S16}-d", TRACE_ID, True, True),
            (f"{T32}-{S16}-1-{P16}", TRACE_ID, True, False),
            (f"{T16}-{S16}-1", int(T16, 16), True, False),
            (f" {T16}-{S16}-0 ", int(T16, 16), False, False),
        ],
    )
    def test_valid(self, value: str, trace_id: int, sampled: bool | None, debug: bool) -> None:
        found = extract(b3.B3Propagator(), {"B3": value})
        assert found.context == _sc.SpanContext(trace_id, SPAN_ID, sampled, debug, remote=True)
        assert found.format == "b3"

    @pytest.mark.parametrize(
        ("value", "sampled", "debug"), [("0", False, False), ("1", True, False), ("d", True, True)]
    )
    def test_sampling_state_alone_is_a_bare_decision(
        self, value: str, sampled: bool, debug: bool
    ) -> None:
        found = extract(b3.B3Propagator(), {"b3": value})
        assert found.context is None
        assert (found.sampled, found.debug) == (sampled, debug)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (f"{T32.upper()}-{S16}-1", "trace_id"),
            (f"{T32[:-1]}-{S16}-1", "trace_id"),
            (f"{'0' * 32}-{S16}-1", "trace_id"),
            (f"{T32}-{'0' * 16}-1", "span_id"),
            (f"{T32}-{S16[:-1]}-1", "span_id"),
            (f"{T32}-{S16}-2", "sampled"),
            (f"{T32}-{S16}-true", "sampled"),
            (f"{T32}-{S16}-1-{P16[:-1]}", "parent_id"),
            (f"{T32}-{S16}-1-{P16}-x", "format"),
            ("true", "sampled"),
            ("", "sampled"),
            ("x" * 129, "too_long"),
        ],
    )
    def test_invalid_counted(self, value: str, reason: str) -> None:
        failures = counter()
        found = extract(b3.B3Propagator(failures), {"b3": value})
        assert found.context is None and found.sampled is None
        assert counts(failures) == {("b3", reason): 1}

    def test_duplicate_header(self) -> None:
        failures = counter()
        found = extract(b3.B3Propagator(failures), [("b3", f"{T32}-{S16}"), ("b3", f"{T32}-{S16}")])
        assert found.context is None
        assert counts(failures) == {("b3", "duplicate"): 1}

    @pytest.mark.parametrize(
        ("sampled", "debug", "suffix"),
        [
            (True, False, "-1"),
            (False, False, "-0"),
            (None, False, ""),
            (False, True, "-d"),
            (None, True, "-d"),
        ],
    )
    def test_inject(self, sampled: bool | None, debug: bool, suffix: str) -> None:
        carrier = inject(b3.B3Propagator(), context(sampled=sampled, debug=debug))
        assert carrier == {"b3": f"{T32}-{S16}{suffix}"}

    def test_inject_pads_64_bit_trace_ids(self) -> None:
        carrier = inject(b3.B3Propagator(), context(trace_id=int(T16, 16)))
        assert carrier == {"b3": f"{'0' * 16}{T16}-{S16}-1"}


class TestMulti:
    def _headers(self, **extra: str) -> dict[str, str]:
        headers = {"X-B3-TraceId": T32, "X-B3-SpanId": S16}
        headers.update(extra)
        return headers

    @pytest.mark.parametrize(
        ("extra", "sampled", "debug"),
        [
            ({}, None, False),
            ({"X-B3-Sampled": "1"}, True, False),
            ({"X-B3-Sampled": "0"}, False, False),
            ({"X-B3-Sampled": "true"}, True, False),
            ({"X-B3-Sampled": "False"}, False, False),
            ({"X-B3-Flags": "1"}, True, True),
            ({"X-B3-Flags": "1", "X-B3-Sampled": "0"}, True, True),
            ({"X-B3-ParentSpanId": P16, "X-B3-Sampled": "1"}, True, False),
        ],
    )
    def test_valid(self, extra: dict[str, str], sampled: bool | None, debug: bool) -> None:
        found = extract(b3multi.B3MultiPropagator(), self._headers(**extra))
        assert found.context == _sc.SpanContext(TRACE_ID, SPAN_ID, sampled, debug, remote=True)

    def test_64_bit_trace_id(self) -> None:
        found = extract(b3multi.B3MultiPropagator(), {"x-b3-traceid": T16, "x-b3-spanid": S16})
        assert found.context is not None and found.context.trace_id == int(T16, 16)

    @pytest.mark.parametrize(
        ("headers", "reason"),
        [
            ({"X-B3-TraceId": T32.upper(), "X-B3-SpanId": S16}, "trace_id"),
            ({"X-B3-TraceId": "0" * 32, "X-B3-SpanId": S16}, "trace_id"),
            ({"X-B3-TraceId": T32}, "span_id"),
            ({"X-B3-TraceId": T32, "X-B3-SpanId": "0" * 16}, "span_id"),
            ({"X-B3-TraceId": T32, "X-B3-SpanId": S16, "X-B3-ParentSpanId": "xyz"}, "parent_id"),
            ({"X-B3-TraceId": "a" * 33, "X-B3-SpanId": S16}, "trace_id"),
        ],
    )
    def test_invalid_ids(self, headers: dict[str, str], reason: str) -> None:
        failures = counter()
        assert extract(b3multi.B3MultiPropagator(failures), headers).context is None
        assert counts(failures) == {("b3multi", reason): 1}

    def test_bad_sampling_header_dropped_alone(self) -> None:
        failures = counter()
        found = extract(
            b3multi.B3MultiPropagator(failures), self._headers(**{"X-B3-Sampled": "yes"})
        )
        assert found.context is not None and found.context.sampled is None
        assert counts(failures) == {("b3multi", "sampled"): 1}

    def test_sampling_without_ids_is_a_bare_decision(self) -> None:
        found = extract(b3multi.B3MultiPropagator(), {"X-B3-Sampled": "0"})
        assert found.context is None and found.sampled is False
        found = extract(b3multi.B3MultiPropagator(), {"X-B3-Flags": "1"})
        assert found.context is None and (found.sampled, found.debug) == (True, True)

    def test_duplicate_header(self) -> None:
        failures = counter()
        found = extract(
            b3multi.B3MultiPropagator(failures),
            [("X-B3-TraceId", T32), ("x-b3-traceid", T32), ("X-B3-SpanId", S16)],
        )
        assert found.context is None
        assert counts(failures) == {("b3multi", "duplicate"): 1}

    @pytest.mark.parametrize(
        ("sampled", "debug", "extra"),
        [
            (True, False, {"x-b3-sampled": "1"}),
            (False, False, {"x-b3-sampled": "0"}),
            (None, False, {}),
            (False, True, {"x-b3-flags": "1"}),
        ],
    )
    def test_inject(self, sampled: bool | None, debug: bool, extra: dict[str, str]) -> None:
        carrier = inject(b3multi.B3MultiPropagator(), context(sampled=sampled, debug=debug))
        assert carrier == {"x-b3-traceid": T32, "x-b3-spanid": S16, **extra}
