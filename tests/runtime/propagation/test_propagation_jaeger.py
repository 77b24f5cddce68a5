"""Jaeger: uber-trace-id (plain and URL-encoded), uberctx-* baggage, jaeger-debug-id."""

import pytest
from proptools import SPAN_ID, TRACE_ID, context, counter, counts, extract, inject

from gatetrace.runtime import baggage as _baggage
from gatetrace.runtime import spancontext as _sc
from gatetrace.runtime.propagation import base, jaeger

T32 = f"{TRACE_ID:032x}"
S16 = f"{SPAN_ID:016x}"


class TestExtract:
    @pytest.mark.parametrize(
        ("value", "trace_id", "sampled", "debug"),
        [
            (f"{T32}:{S16}:0:1", TRACE_ID, True, False),
            (f"{T32}:{S16}:0:0", TRACE_ID, False, False),
            (f"{T32}:{S16}:0:3", TRACE_ID, True, True),
            (f"{T32}:{S16}:0:0b", TRACE_ID, True, True),
            (f"{T32}:{S16}:05e3ac9a4f6e3b90:01", TRACE_ID, True, False),
            (f"{T32}%3A{S16}%3a0%3A1", TRACE_ID, True, False),
            (f"abc:{S16}:0:1", 0xABC, True, False),
            (f"{T32.upper()}:{S16}:0:1", TRACE_ID, True, False),
        ],
    )
    def test_valid(self, value: str, trace_id: int, sampled: bool, debug: bool) -> None:
        found = extract(jaeger.JaegerPropagator(), {"Uber-Trace-Id": value})
        assert found.context == _sc.SpanContext(trace_id, SPAN_ID, sampled, debug, remote=True)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (f"{T32}:{S16}:0", "format"),
            (f"{T32}:{S16}:0:1:2", "format"),
            (f"0:{S16}:0:1", "trace_id"),
            (f"{'a' * 33}:{S16}:0:1", "trace_id"),
            (f"{T32}:0:0:1", "span_id"),
            (f"{T32}:{S16}1:0:1", "span_id"),
            (f"{T32}:{S16}::1", "parent_id"),
            (f"{T32}:{S16}:0:", "flags"),
            (f"{T32}:{S16}:0:100", "flags"),
            (f"{T32}:{S16}:0:x", "flags"),
            (f"{T32}%3G{S16}", "format"),
            ("x" * 300, "too_long"),
        ],
    )
    def test_invalid_counted(self, value: str, reason: str) -> None:
        failures = counter()
        assert extract(jaeger.JaegerPropagator(failures), {"uber-trace-id": value}).context is None
        assert counts(failures) == {("jaeger", reason): 1}

    def test_baggage_url_decoded_and_keys_lowercased(self) -> None:
        found = extract(
            jaeger.JaegerPropagator(),
            {
                "uber-trace-id": f"{T32}:{S16}:0:1",
                "UberCtx-Tenant": "acme%20co",
                "uberctx-x": "a/b",
            },
        )
        assert dict(found.baggage) == {"tenant": "acme co", "x": "a/b"}
        assert found.context is not None

    def test_raw_bytes_that_are_not_utf8_become_replacement_characters(self) -> None:
        # aiohttp decodes header bytes with surrogateescape: b"caf\xc3\xa9 \xff" arrives so
        raw = b"caf\xc3\xa9 \xff%21".decode("utf-8", "surrogateescape")
        found = extract(jaeger.JaegerPropagator(), {"uberctx-k": raw, "uberctx-s": "\ud800"})
        assert dict(found.baggage) == {"k": "caf\u00e9 \ufffd!", "s": "\ufffd\ufffd\ufffd"}
        for value in dict(found.baggage).values():
            value.encode("utf-8")  # no lone surrogates left

    def test_baggage_without_trace_header(self) -> None:
        found = extract(jaeger.JaegerPropagator(), {"uberctx-k": "v"})
        assert found.context is None and dict(found.baggage) == {"k": "v"}

    def test_baggage_limits(self) -> None:
        failures = counter()
        limits = base.BaggageLimits(max_entries=2)
        carrier = {f"uberctx-k{i}": "v" for i in range(4)}
        found = extract(jaeger.JaegerPropagator(failures, limits), carrier)
        assert len(found.baggage) == 2
        assert counts(failures) == {("jaeger", "limit"): 2}

    def test_debug_id_alone_makes_a_debug_container(self) -> None:
        found = extract(jaeger.JaegerPropagator(), {"jaeger-debug-id": " my-debug-1 "})
        assert found.context == _sc.SpanContext(
            0, 0, True, True, remote=True, debug_id="my-debug-1"
        )
        assert not found.context.is_valid
        assert (found.sampled, found.debug) == (True, True)

    def test_debug_id_ignored_when_a_trace_arrives(self) -> None:
        found = extract(
            jaeger.JaegerPropagator(),
            {"uber-trace-id": f"{T32}:{S16}:0:0", "jaeger-debug-id": "x"},
        )
        assert found.context == _sc.SpanContext(TRACE_ID, SPAN_ID, False, remote=True)

    @pytest.mark.parametrize("value", ["", "bad\x01char", "x" * 300])
    def test_bad_debug_id_counted(self, value: str) -> None:
        failures = counter()
        assert (
            extract(jaeger.JaegerPropagator(failures), {"jaeger-debug-id": value}).context is None
        )
        assert counts(failures) == {("jaeger", "debug_id"): 1}


class TestInject:
    @pytest.mark.parametrize(
        ("sampled", "debug", "flags"),
        [
            (True, False, "1"),
            (False, False, "0"),
            (None, False, "0"),
            (True, True, "3"),
            (None, True, "3"),
        ],
    )
    def test_trace_header(self, sampled: bool | None, debug: bool, flags: str) -> None:
        carrier = inject(jaeger.JaegerPropagator(), context(sampled=sampled, debug=debug))
        assert carrier == {"uber-trace-id": f"{T32}:{S16}:0:{flags}"}

    def test_baggage_headers(self) -> None:
        failures = counter()
        bag = _baggage.Baggage.from_values({"tenant": "acme co", "bad key": "x", "k": "100%"})
        carrier = inject(jaeger.JaegerPropagator(failures), context(baggage=bag))
        assert carrier["uberctx-tenant"] == "acme%20co"
        assert carrier["uberctx-k"] == "100%25"
        assert "uberctx-bad key" not in carrier
        assert counts(failures) == {("jaeger", "inject_member"): 1}
