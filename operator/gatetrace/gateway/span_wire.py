"""Finished spans as plain tuples, so a worker can ship them to the supervisor's store.

:func:`encode` keeps what the span store and the query API read (identity, parent,
resource, name, kind, times, tags, logs, status, references) and the bytes the store will
count for the span (:func:`~gatetrace.runtime.span_size.retained_bytes`, measured by the
worker: the supervisor only adds); :func:`decode` makes finished, non-recording
:class:`~gatetrace.runtime.span.Span` objects of them again. Resources are shared
objects: pickle sends each distinct one once per batch.
"""

from collections.abc import Iterable, Sequence
from typing import Any, Final

from gatetrace.runtime import span as _span
from gatetrace.runtime import span_size as _span_size
from gatetrace.runtime import spancontext as _sc

__all__ = ["decode", "encode"]

_KINDS: Final = {kind.value: kind for kind in _span.SpanKind}
_REFERENCES: Final = {kind.value: kind for kind in _span.ReferenceType}
_CODES: Final = {code.value: code for code in _span.StatusCode}
_UNSET: Final = _span.UNSET_STATUS  # the shared instance: encoders compare by identity

Encoded = tuple[Any, ...]


def encode(spans: Iterable[_span.Span]) -> list[Encoded]:
    """The finished ``spans`` as tuples (unfinished ones are skipped)."""
    found: list[Encoded] = []
    for span in spans:
        if span.end_ns is None:
            continue
        context = span.context
        status = span.status
        found.append(
            (
                context.trace_id,
                context.span_id,
                span.parent_id,
                span.name,
                span.kind.value,
                span.resource,
                span.start_ns,
                span.end_ns,
                span.tags or None,
                [(log.timestamp_ns, dict(log.fields)) for log in span.logs] or None,
                None if status is _UNSET else (status.code.value, status.description),
                [(r.type.value, r.context.trace_id, r.context.span_id) for r in span.references]
                or None,
                span.sampled,
                span.is_local_root,
                _span_size.retained_bytes(span, with_context=False),
            )
        )
    return found


def decode(encoded: Sequence[Encoded]) -> tuple[list[_span.Span], list[int]]:
    """Finished spans again, from :func:`encode`'s tuples, and their sizes for the store."""
    spans: list[_span.Span] = []
    sizes: list[int] = []
    restored = _span.Span.restored
    context = _sc.SpanContext
    kinds = _KINDS
    for item in encoded:
        (
            trace_id,
            span_id,
            parent_id,
            name,
            kind,
            resource,
            start_ns,
            end_ns,
            tags,
            logs,
            status,
            references,
            sampled,
            local_root,
            size,
        ) = item
        spans.append(
            restored(
                context(trace_id, span_id, sampled),
                name,
                kinds[kind],
                parent_id,
                resource,
                start_ns,
                end_ns,
                tags if tags is not None else {},
                [_span.LogRecord(ts, fields) for ts, fields in logs] if logs else [],
                _UNSET if status is None else _span.Status(_CODES[status[0]], status[1]),
                tuple(
                    _span.Reference(_REFERENCES[t], context(tid, sid)) for t, tid, sid in references
                )
                if references
                else (),
                local_root,
            )
        )
        sizes.append(size)
    return spans, sizes
