"""The parent-based sampler: honour the upstream decision, case by case.

The tracer consults a sampler only for a *local root*: a new trace or a span
whose parent came over the wire. Four cases, each configurable:

* remote parent sampled (``sampled=1``)      -> ``remote_sampled`` (default: sample)
* remote parent not sampled (``sampled=0``)  -> ``remote_not_sampled`` (default: drop)
* remote parent deferred (``sampled=None``: B3/Jaeger let a caller leave the
  decision to us)                            -> ``remote_deferred`` (default: ``root``)
* no parent (a new trace)                    -> ``root``

The default follow-the-parent answers carry ``sampler.type=parent``,
``sampler.param=<upstream flag>``, reason ``parent``.
"""

from gatetrace.runtime.sampling import base as _base

__all__ = ["ParentBasedSampler"]

_FOLLOW_SAMPLED = _base.SamplingResult(_base.Decision.SAMPLE, "parent", True, "parent")
_FOLLOW_NOT_SAMPLED = _base.SamplingResult(_base.Decision.DROP, "parent", False, "parent")


class ParentBasedSampler:
    """Delegate by the remote parent's sampled flag; ``root`` decides new traces."""

    __slots__ = ("remote_deferred", "remote_not_sampled", "remote_sampled", "root")

    def __init__(
        self,
        root: _base.Sampler,
        *,
        remote_sampled: _base.Sampler | None = None,
        remote_not_sampled: _base.Sampler | None = None,
        remote_deferred: _base.Sampler | None = None,
    ) -> None:
        self.root = root
        self.remote_sampled = remote_sampled
        self.remote_not_sampled = remote_not_sampled
        self.remote_deferred = remote_deferred

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        _, _, _, parent, _ = params  # unpacked: a field read is a generic attribute lookup
        if parent is None:
            try:  # as _base.decide, inlined: new traces are the common case
                return self.root.should_sample(params)
            except Exception:
                return _base.SAMPLER_ERROR
        flag = parent.sampled
        if flag is None:
            chosen = self.remote_deferred
            return _base.decide(self.root if chosen is None else chosen, params)
        if flag:
            chosen = self.remote_sampled
            return _FOLLOW_SAMPLED if chosen is None else _base.decide(chosen, params)
        chosen = self.remote_not_sampled
        return _FOLLOW_NOT_SAMPLED if chosen is None else _base.decide(chosen, params)

    def describe(self) -> str:
        parts = [f"root={self.root.describe()}"]
        for name in ("remote_sampled", "remote_not_sampled", "remote_deferred"):
            sampler: _base.Sampler | None = getattr(self, name)
            if sampler is not None:
                parts.append(f"{name}={sampler.describe()}")
        return f"parentBased({', '.join(parts)})"
