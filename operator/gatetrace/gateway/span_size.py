"""How many bytes a stored span keeps alive: :mod:`gatetrace.runtime.span_size` (the kit's
retro buffer is bounded by the same estimate); re-exported here."""

from gatetrace.runtime.span_size import MIN_SPAN_BYTES, retained_bytes

__all__ = ["MIN_SPAN_BYTES", "retained_bytes"]
