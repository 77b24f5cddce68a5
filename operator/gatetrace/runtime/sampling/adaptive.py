"""The adaptive sampler: a probability steered towards a target traces/s.

How it adapts, once per window (``window_seconds``, checked lazily on the
decisions themselves, so no timer task is needed):

1. the request rate seen in the window (root decisions per second) feeds an
   exponentially weighted moving average (``smoothing`` per window; a gap of
   several windows weighs as several windows);
2. the ideal probability is ``target / average request rate``;
3. the probability moves towards it multiplicatively, damped: by the factor
   ``(ideal / current) ** damping``, and never by more than ``max_step`` (x or
   /) in one window; changes under 5% are ignored; the result is clamped to
   ``[min_rate, max_rate]``.

Steering on the *request* rate rather than on the sampled rate keeps the
estimate independent of the probability itself (no feedback loop), the
average absorbs bursts, and the step limit keeps one odd window from
swinging the probability. The first full window sets the probability
directly (there is nothing to damp yet).

The decision for a given probability is the probabilistic one (lower 64 bits
of the trace id, see :mod:`.probabilistic`); ``sampler.param`` records the
probability in force.
"""

import time

from gatetrace.runtime.sampling import base as _base
from gatetrace.runtime.sampling import probabilistic as _prob
from gatetrace.runtime.sampling import tokenbucket as _tb

__all__ = ["AdaptiveSampler"]

_DEADBAND = 0.05


class AdaptiveSampler:
    """Aim for ``target_traces_per_second`` sampled traces, within ``[min_rate, max_rate]``."""

    __slots__ = (
        "_average",
        "_bound",
        "_clock",
        "_drop",
        "_sample",
        "_seen",
        "_window_start",
        "damping",
        "max_rate",
        "max_step",
        "min_rate",
        "rate",
        "smoothing",
        "target_traces_per_second",
        "window_seconds",
    )

    def __init__(
        self,
        target_traces_per_second: float,
        *,
        min_rate: float = 0.001,
        max_rate: float = 1.0,
        initial_rate: float | None = None,
        window_seconds: float = 1.0,
        smoothing: float = 0.3,
        damping: float = 0.5,
        max_step: float = 2.0,
        clock: _tb.Clock | None = None,
    ) -> None:
        self.target_traces_per_second = _tb.check_per_second(
            "target_traces_per_second", target_traces_per_second
        )
        self.min_rate = _prob.check_rate("min_rate", min_rate)
        self.max_rate = _prob.check_rate("max_rate", max_rate)
        if self.min_rate > self.max_rate:
            raise ValueError(f"min_rate {self.min_rate} is above max_rate {self.max_rate}")
        self.window_seconds = _tb.check_per_second("window_seconds", window_seconds)
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be within (0, 1], got {smoothing}")
        if not 0.0 < damping <= 1.0:
            raise ValueError(f"damping must be within (0, 1], got {damping}")
        if not max_step > 1.0:
            raise ValueError(f"max_step must be above 1, got {max_step}")
        self.smoothing = float(smoothing)
        self.damping = float(damping)
        self.max_step = float(max_step)
        rate = self.min_rate
        if initial_rate is not None:
            rate = _prob.check_rate("initial_rate", initial_rate)
        self._clock: _tb.Clock = clock if clock is not None else time.monotonic
        self._window_start = self._clock()
        self._seen = 0
        self._average: float | None = None
        self.rate = 0.0
        self._bound = 0
        self._drop = self._sample = _base.SAMPLER_ERROR
        self._set_rate(min(max(rate, self.min_rate), self.max_rate))

    def _set_rate(self, rate: float) -> None:
        self.rate = rate
        self._bound = _prob.bound_for_rate(rate)
        self._sample = _base.SamplingResult(_base.Decision.SAMPLE, "adaptive", rate, "adaptive")
        self._drop = _base.SamplingResult(_base.Decision.DROP, "adaptive", rate, "adaptive")

    @property
    def average_request_rate(self) -> float | None:
        """The smoothed request rate (decisions per second); None before the first window."""
        return self._average

    def _adapt(self, now: float) -> None:
        elapsed = now - self._window_start
        observed = self._seen / elapsed
        self._window_start = now
        self._seen = 0
        previous = self._average
        if previous is None:
            self._average = observed
        else:
            windows = elapsed / self.window_seconds
            weight = 1.0 - (1.0 - self.smoothing) ** windows
            self._average = previous + weight * (observed - previous)
        average = self._average
        ideal = self.max_rate if average <= 0 else self.target_traces_per_second / average
        ideal = min(max(ideal, self.min_rate), self.max_rate)
        current = self.rate
        if previous is None or current <= 0:
            new = ideal
        else:
            factor = (ideal / current) ** self.damping
            if abs(factor - 1.0) < _DEADBAND:
                return
            factor = min(max(factor, 1.0 / self.max_step), self.max_step)
            new = current * factor
        self._set_rate(min(max(new, self.min_rate), self.max_rate))

    def should_sample(self, params: _base.SamplingParams) -> _base.SamplingResult:
        now = self._clock()
        if now - self._window_start >= self.window_seconds:
            self._adapt(now)
        self._seen += 1
        if (params.trace_id & _prob.TRACE_ID_LIMIT) < self._bound:
            return self._sample
        return self._drop

    def describe(self) -> str:
        return (
            f"adaptive(target={self.target_traces_per_second:g}/s, rate={self.rate:g}, "
            f"min={self.min_rate:g}, max={self.max_rate:g})"
        )
