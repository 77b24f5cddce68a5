"""The hot path builds some NamedTuples with ``tuple.__new__`` and positional slices (no
keyword parsing per request). Each layout those shortcuts assume is pinned here: a field
added or moved in one of these types fails this test, not a request."""

from gatetrace.runtime import baggage, spancontext
from gatetrace.runtime.propagation import base, tracecontext


def test_span_context_layout_used_by_tracecontext() -> None:
    fields = spancontext.SpanContext._fields
    # tracecontext builds (trace_id, span_id, sampled, debug, random, remote) + defaults
    assert fields[:6] == ("trace_id", "span_id", "sampled", "debug", "random", "remote")
    # and replaces index 6 with the parsed members
    assert fields[6] == "trace_state"
    assert tuple(spancontext.SpanContext(1, 1))[6:] == tracecontext._TAIL
    assert len(tracecontext._TAIL) == len(fields) - 6


def test_span_context_layout_used_by_base() -> None:
    assert spancontext.SpanContext._fields[base._BAGGAGE_AT] == "baggage"
    context = spancontext.SpanContext(1, 2, True)
    replaced = base.context_with_baggage(context, baggage.EMPTY_BAGGAGE)
    assert replaced == context._replace(baggage=baggage.EMPTY_BAGGAGE)


def test_extracted_and_baggage_entry_layouts() -> None:
    assert base.Extracted._fields == ("context", "baggage", "format", "sampled", "debug")
    assert baggage.BaggageEntry._fields == ("value", "metadata")
