"""W3C Trace Context conformance, written from the spec's test cases (Level 2, strict).

Each vector is the list of request headers a service receives and what it must
continue: the trace id it keeps (None: it must restart the trace) and the
tracestate it keeps (None: discarded). Our own vectors, following the
categories of the spec's harness: header names, versions, id and flag
grammar, OWS, duplicates, tracestate combination, keys, values and limits.
"""

import pytest
from proptools import extract, inject

from gatetrace.runtime.propagation import tracecontext

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TP = f"00-{TRACE}-{SPAN}-01"

Headers = list[tuple[str, str]]

TRACEPARENT_VECTORS: list[tuple[str, Headers, bool]] = [
    # (name, headers, context kept?)
    ("missing", [], False),
    ("plain", [("traceparent", TP)], True),
    ("name casing", [("TrAcEpArEnT", TP)], True),
    ("upper name", [("TRACEPARENT", TP)], True),
    ("wrong name dash", [("trace-parent", TP)], False),
    ("wrong name dot", [("trace.parent", TP)], False),
    ("duplicated same", [("traceparent", TP), ("traceparent", TP)], False),
    (
        "duplicated different",
        [("traceparent", TP), ("traceparent", TP.replace("0af7", "0af8"))],
        False,
    ),
    ("v00 trailing dot", [("traceparent", TP + ".")], False),
    ("v00 trailing field", [("traceparent", TP + "-future")], False),
    ("vcc exact", [("traceparent", "cc" + TP[2:])], True),
    ("vcc trailing field", [("traceparent", "cc" + TP[2:] + "-what-comes-next")], True),
    ("vcc trailing dot", [("traceparent", "cc" + TP[2:] + ".what-comes-next")], False),
    ("vfe exact", [("traceparent", "fe" + TP[2:])], True),
    ("vff", [("traceparent", "ff" + TP[2:])], False),
    ("version dot first", [("traceparent", ".0" + TP[2:])], False),
    ("version dot second", [("traceparent", "0." + TP[2:])], False),
    ("version upper", [("traceparent", "CC" + TP[2:])], False),
    ("version 3 digits", [("traceparent", "000" + TP[2:])], False),
    ("version 4 digits", [("traceparent", "0000" + TP[2:])], False),
    ("version 1 digit", [("traceparent", "0" + TP[2:])], False),
    ("trace id zero", [("traceparent", f"00-{'0' * 32}-{SPAN}-01")], False),
    ("trace id dot first", [("traceparent", f"00-.{TRACE[1:]}-{SPAN}-01")], False),
    ("trace id dot last", [("traceparent", f"00-{TRACE[:-1]}.-{SPAN}-01")], False),
    ("trace id upper", [("traceparent", f"00-{TRACE.upper()}-{SPAN}-01")], False),
    ("trace id 33 digits", [("traceparent", f"00-{TRACE}1-{SPAN}-01")], False),
    ("trace id 31 digits", [("traceparent", f"00-{TRACE[:-1]}-{SPAN}-01")], False),
    ("parent id zero", [("traceparent", f"00-{TRACE}-{'0' * 16}-01")], False),
    ("parent id dot first", [("traceparent", f"00-{TRACE}-.{SPAN[1:]}-01")], False),
    ("parent id dot last", [("traceparent", f"00-{TRACE}-{SPAN[:-1]}.-01")], False),
    ("parent id 17 digits", [("traceparent", f"00-{TRACE}-{SPAN}1-01")], False),
    ("parent id 15 digits", [("traceparent", f"00-{TRACE}-{SPAN[:-1]}-01")], False),
    ("flags dot first", [("traceparent", f"00-{TRACE}-{SPAN}-.0")], False),
    ("flags dot last", [("traceparent", f"00-{TRACE}-{SPAN}-0.")], False),
    ("flags 3 digits", [("traceparent", f"00-{TRACE}-{SPAN}-001")], False),
    ("flags 1 digit", [("traceparent", f"00-{TRACE}-{SPAN}-1")], False),
    ("flags upper", [("traceparent", f"00-{TRACE}-{SPAN}-0A")], False),
    ("underscore in id", [("traceparent", f"00-{TRACE[:10]}_{TRACE[11:]}-{SPAN}-01")], False),
    ("plus sign in id", [("traceparent", f"00-+{TRACE[1:]}-{SPAN}-01")], False),
    ("leading space", [("traceparent", " " + TP)], True),
    ("leading tab", [("traceparent", "\t" + TP)], True),
    ("trailing space", [("traceparent", TP + " ")], True),
    ("trailing tab", [("traceparent", TP + "\t")], True),
    ("both sides", [("traceparent", "\t " + TP + " \t")], True),
    ("inner space", [("traceparent", TP.replace("-", " -", 1))], False),
    ("non-ascii", [("traceparent", TP[:-1] + "\u0661")], False),
]


@pytest.mark.parametrize(
    ("headers", "kept"),
    [pytest.param(h, k, id=n) for n, h, k in TRACEPARENT_VECTORS],
)
def test_traceparent(headers: Headers, kept: bool) -> None:
    found = extract(tracecontext.TraceContextPropagator(), headers)
    if kept:
        assert found.context is not None
        assert found.context.trace_id_hex == TRACE and found.context.span_id_hex == SPAN
        assert found.context.sampled is True
    else:
        assert found.context is None


def _all_chars_key() -> str:
    return "abcdefghijklmnopqrstuvwxyz0123456789_-*/"


ALL_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

TRACESTATE_VECTORS: list[tuple[str, Headers, dict[str, str] | None]] = [
    # (name, tracestate headers, members kept or None when discarded)
    ("missing", [], {}),
    ("empty header", [("tracestate", "")], {}),
    ("empty then value", [("tracestate", ""), ("tracestate", "foo=1")], {"foo": "1"}),
    ("value then empty", [("tracestate", "foo=1"), ("tracestate", "")], {"foo": "1"}),
    ("name casing", [("TrAcEsTaTe", "foo=1")], {"foo": "1"}),
    ("wrong name", [("trace-state", "foo=1")], {}),
    ("two members", [("tracestate", "foo=1,bar=2")], {"foo": "1", "bar": "2"}),
    (
        "three headers in order",
        [("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2"), ("tracestate", "baz=3")],
        {"foo": "1", "bar": "2", "rojo": "1", "congo": "2", "baz": "3"},
    ),
    # Level 2: a duplicated key does not discard the header; the first member is kept
    ("duplicate in one header", [("tracestate", "foo=1,foo=1")], {"foo": "1"}),
    ("duplicate different values", [("tracestate", "foo=1,foo=2,bar=3")], {"foo": "1", "bar": "3"}),
    ("duplicate across headers", [("tracestate", "foo=1"), ("tracestate", "foo=2")], {"foo": "1"}),
    ("all key chars", [("tracestate", _all_chars_key() + "=1")], {_all_chars_key(): "1"}),
    (
        "all key chars with vendor",
        [("tracestate", _all_chars_key() + "@a-z0-9_-*/=1")],
        {_all_chars_key() + "@a-z0-9_-*/": "1"},
    ),
    ("all value chars", [("tracestate", "foo=" + ALL_VALUE_CHARS)], {"foo": ALL_VALUE_CHARS}),
    (
        "OWS around members",
        [("tracestate", "foo=1 \t , \t bar=2, \t baz=3")],
        {"foo": "1", "bar": "2", "baz": "3"},
    ),
    ("OWS tabs", [("tracestate", "foo=1\t \t,\t \tbar=2")], {"foo": "1", "bar": "2"}),
    ("leading space", [("tracestate", " foo=1")], {"foo": "1"}),
    ("trailing tab", [("tracestate", "foo=1\t")], {"foo": "1"}),
    ("empty members", [("tracestate", "foo=1,, ,\t,bar=2,")], {"foo": "1", "bar": "2"}),
    ("space in key", [("tracestate", "foo =1")], None),
    ("upper key", [("tracestate", "FOO=1")], None),
    ("dot in key", [("tracestate", "foo.bar=1")], None),
    # Level 2 key = ( lcalpha / DIGIT ) 0*255 ( keychar ), keychar including "@"
    ("digit first simple key", [("tracestate", "1foo=1")], {"1foo": "1"}),
    ("digit only key", [("tracestate", "7=1")], {"7": "1"}),
    ("one letter key", [("tracestate", "a=1")], {"a": "1"}),
    ("digit first tenant", [("tracestate", "1foo@bar=1")], {"1foo@bar": "1"}),
    ("digit first system", [("tracestate", "foo@1bar=1")], {"foo@1bar": "1"}),
    ("at at the end", [("tracestate", "foo@=1,bar=2")], {"foo@": "1", "bar": "2"}),
    ("key starting with at", [("tracestate", "@foo=1,bar=2")], None),
    ("double at", [("tracestate", "foo@@bar=1,bar=2")], {"foo@@bar": "1", "bar": "2"}),
    ("two ats", [("tracestate", "foo@bar@baz=1,bar=2")], {"foo@bar@baz": "1", "bar": "2"}),
    ("underscore first", [("tracestate", "_foo=1")], None),
    ("slash first", [("tracestate", "/foo=1")], None),
    (
        "key 256",
        [("tracestate", "foo=1"), ("tracestate", "z" * 256 + "=1")],
        {"foo": "1", "z" * 256: "1"},
    ),
    ("key 257", [("tracestate", "foo=1"), ("tracestate", "z" * 257 + "=1")], None),
    (
        "tenant 241 system 14",
        [("tracestate", "foo=1"), ("tracestate", "t" * 241 + "@" + "v" * 14 + "=1")],
        {"foo": "1", "t" * 241 + "@" + "v" * 14: "1"},
    ),
    (
        "tenant 242",
        [("tracestate", "foo=1"), ("tracestate", "t" * 242 + "@v=1")],
        {"foo": "1", "t" * 242 + "@v": "1"},
    ),
    (
        "system 15",
        [("tracestate", "foo=1"), ("tracestate", "t@" + "v" * 15 + "=1")],
        {"foo": "1", "t@" + "v" * 15: "1"},
    ),
    (
        "at key 256",
        [("tracestate", "t" * 200 + "@" + "v" * 55 + "=1")],
        {"t" * 200 + "@" + "v" * 55: "1"},
    ),
    ("at key 257", [("tracestate", "foo=1,t" + "@" * 256 + "=1")], None),
    ("value with equals", [("tracestate", "foo=bar=baz")], None),
    ("empty value", [("tracestate", "foo=,bar=3")], None),
    ("no equals", [("tracestate", "foo,bar=3")], None),
    ("value 256", [("tracestate", "foo=" + "v" * 256)], {"foo": "v" * 256}),
    ("value 257", [("tracestate", "foo=" + "v" * 257)], None),
    ("value inner space", [("tracestate", "foo=a b")], {"foo": "a b"}),
    ("value leading space", [("tracestate", "foo= a")], {"foo": " a"}),
    ("value non-ascii", [("tracestate", "foo=\u00e9")], None),
    ("value control char", [("tracestate", "foo=a\x01")], None),
    (
        "32 members",
        [("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33)))],
        {f"bar{i:02d}": f"{i:02d}" for i in range(1, 33)},
    ),
    (
        "32 members over 4 headers",
        [
            ("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(j, min(j + 10, 33))))
            for j in range(1, 33, 10)
        ],
        {f"bar{i:02d}": f"{i:02d}" for i in range(1, 33)},
    ),
    ("33 members", [("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 34)))], None),
    (
        "33 members over 4 headers",
        [
            ("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(j, min(j + 10, 34))))
            for j in range(1, 34, 10)
        ],
        None,
    ),
    (
        "32 members and empty ones",
        [("tracestate", ",,".join(f"bar{i:02d}={i:02d}" for i in range(1, 33)) + ", ,")],
        {f"bar{i:02d}": f"{i:02d}" for i in range(1, 33)},
    ),
]


@pytest.mark.parametrize(
    ("headers", "members"),
    [pytest.param(h, m, id=n) for n, h, m in TRACESTATE_VECTORS],
)
def test_tracestate(headers: Headers, members: dict[str, str] | None) -> None:
    found = extract(tracecontext.TraceContextPropagator(), [("traceparent", TP), *headers])
    assert found.context is not None, "tracestate problems never invalidate the traceparent"
    assert dict(found.context.trace_state) == (members or {})
    assert list(dict(found.context.trace_state)) == list(members or {}), "order is kept"
    if members:  # what we continue is exactly what we received, in order
        written = inject(
            tracecontext.TraceContextPropagator(max_tracestate_chars=100_000), found.context
        )
        assert written["tracestate"] == ",".join(f"{k}={v}" for k, v in members.items())


def test_tracestate_without_traceparent_is_ignored() -> None:
    found = extract(tracecontext.TraceContextPropagator(), [("tracestate", "foo=1,bar=2")])
    assert found.context is None


def test_tracestate_with_invalid_traceparent_is_ignored() -> None:
    found = extract(
        tracecontext.TraceContextPropagator(),
        [("traceparent", "ff" + TP[2:]), ("tracestate", "foo=1")],
    )
    assert found.context is None


def test_continued_trace_keeps_trace_id_and_flags() -> None:
    found = extract(tracecontext.TraceContextPropagator(), [("traceparent", TP[:-2] + "00")])
    assert found.context is not None
    child = found.context._replace(span_id=0x1122334455667788)
    written = inject(tracecontext.TraceContextPropagator(), child)
    assert written == {"traceparent": f"00-{TRACE}-1122334455667788-00"}


def test_future_version_is_answered_with_version_00() -> None:
    found = extract(
        tracecontext.TraceContextPropagator(), [("traceparent", "cc" + TP[2:] + "-more-fields")]
    )
    assert found.context is not None
    assert inject(tracecontext.TraceContextPropagator(), found.context)["traceparent"] == TP
