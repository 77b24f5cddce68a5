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
_LIMITS: Final = _span.SpanLimits()
_UNSET: Final = _span.Status()


class _NoLimits:
    """A decoded span is finished: nothing can hit a limit any more."""

    def limit_hit(self, what: str, amount: int = 1) -> None:
        return None


_NO_LIMITS: Final = _NoLimits()

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
        span = _span.Span(
            _sc.SpanContext(trace_id, span_id, sampled),
            name,
            kind=_KINDS[kind],
            parent_id=parent_id,
            resource=resource,
            references=[
                _span.Reference(_REFERENCES[t], _sc.SpanContext(tid, sid))
                for t, tid, sid in references or ()
            ],
            sampled=sampled,
            recording=False,
            start_ns=start_ns,
            limits=_LIMITS,
            metrics=_NO_LIMITS,
            end_hook=None,
            is_local_root=local_root,
        )
        span.end_ns = end_ns
        if tags:
            span.tags = tags
        if logs:
            span.logs = [_span.LogRecord(ts, fields) for ts, fields in logs]
        if status is not None:
            span.status = _span.Status(_CODES[status[0]], status[1])
        spans.append(span)
        sizes.append(size)
    return spans, sizes
