"""How many bytes a stored span keeps alive: the estimate behind the store's byte bound.

Tags, logs, the span's name, its context's tracestate and baggage and its status text
come from clients; they are measured as CPython holds them (``sys.getsizeof``: a string
of emoji costs 4 bytes a character), the fixed parts by constants calibrated with
``tracemalloc`` (``tests/gateway/test_store_bounds.py``, ``test_store_hostile.py``).
"""

import sys

from gatetrace.runtime import span as _span
from gatetrace.runtime import spancontext

__all__ = ["MIN_SPAN_BYTES", "context_bytes", "retained_bytes"]

MIN_SPAN_BYTES = 650
"""What a stored span costs before its strings: the Span object and its context, resource
reference, tag dict and log list, and the store's own entry and index slots."""
_SLOT_BYTES = 12
"""A tag or log field beyond its key and value objects: its share of the dict."""
_NUMBER_BYTES = 32
"""An int or float tag value (or a bool's slot)."""
_PAIR_BYTES = 70
"""A tracestate member or baggage entry beyond its strings: the tuple and its slot."""
_REFERENCE_BYTES = 200
"""A reference beyond what its context carries: the Reference and SpanContext tuples."""


def _value_bytes(value: object) -> int:
    # sys.getsizeof, not len: CPython stores a string of emoji in 4 bytes a character,
    # and the client chooses the characters
    return sys.getsizeof(value) if isinstance(value, str) else _NUMBER_BYTES


def context_bytes(context: spancontext.SpanContext) -> int:
    """What a context carries from the client: tracestate members, baggage, a debug id."""
    size = 0
    for key, value in context.trace_state:
        size += _PAIR_BYTES + sys.getsizeof(key) + sys.getsizeof(value)
    if context.baggage:
        for key, entry in context.baggage.entries():
            size += _PAIR_BYTES + sys.getsizeof(key) + sys.getsizeof(entry.value)
            if entry.metadata:
                size += sys.getsizeof(entry.metadata)
    if context.debug_id:
        size += sys.getsizeof(context.debug_id)
    return size


def retained_bytes(span: _span.Span, *, with_context: bool = True) -> int:
    """An estimate of the memory ``span`` keeps alive in the store (CPython): its strings
    measured as CPython holds them, its context's tracestate and baggage (unless
    ``with_context`` is False: a caller counting them once for spans that share them), its
    status text and references. Objects shared with other spans are counted for each (an
    overestimate, never an under-)."""
    size = MIN_SPAN_BYTES + sys.getsizeof(span.name)
    if with_context:
        size += context_bytes(span.context)
    for key, value in span.tags.items():
        size += _SLOT_BYTES + sys.getsizeof(key) + _value_bytes(value)
    for log in span.logs:
        size += _SLOT_BYTES + MIN_SPAN_BYTES // 8
        for key, value in log.fields.items():
            size += _SLOT_BYTES + sys.getsizeof(key) + _value_bytes(value)
    if span.status.description:
        size += sys.getsizeof(span.status.description)
    for reference in span.references:
        size += _REFERENCE_BYTES + context_bytes(reference.context)
    return size
