"""Shared helpers of the sampler tests: a manual clock and a params factory.

Imported by the test modules as a plain module (pytest puts this directory on
``sys.path``); its name is unique so it cannot shadow anything.
"""

from gatetrace.runtime import span, spancontext
from gatetrace.runtime.sampling import base


class ManualClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_params(
    trace_id: int = 1,
    operation: str = "op",
    *,
    parent_sampled: bool | str | None = "none",
    debug: bool = False,
    request: base.RequestInfo | None = None,
) -> base.SamplingParams:
    """``parent_sampled="none"``: no parent; True/False/None: a remote parent with that flag."""
    parent = None
    if parent_sampled != "none":
        assert parent_sampled is None or isinstance(parent_sampled, bool)
        parent = spancontext.SpanContext(trace_id, 7, parent_sampled, debug, False, True)
    return base.SamplingParams(trace_id, operation, span.SpanKind.SERVER, parent, request)
