"""A token bucket with an injectable clock: the rate limiter behind several samplers.

Used by the rate-limiting sampler, the per-operation lower bound, the global
traces/s cap and the error/latency priority budget. The clock is a callable
returning seconds from a monotonic source (``time.monotonic`` by default);
tests inject a fake one instead of sleeping.

Concurrency: the bucket is meant for one asyncio event loop, where a
decision runs without interruption, so it takes no lock. Used from several
threads it stays exception-free; a race can at worst grant a token twice.
"""

import math
import time
from collections.abc import Callable

__all__ = ["Clock", "TokenBucket", "acquire_all"]

Clock = Callable[[], float]
"""Seconds from a monotonic source; only differences matter."""


def check_per_second(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Validate a traces-per-second setting; the error names the field."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full."""

    __slots__ = ("_clock", "_last", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, capacity: float | None = None, *, clock: Clock | None = None):
        self.rate = check_per_second("rate", rate, allow_zero=True)
        # A bucket smaller than one token could never grant anything.
        self.capacity = max(1.0, self.rate if capacity is None else float(capacity))
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._tokens = self.capacity
        self._last = self._clock()

    def _refill(self) -> float:
        now = self._clock()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:  # a clock that steps back never takes tokens away
            tokens = self._tokens + elapsed * self.rate
            self._tokens = tokens if tokens < self.capacity else self.capacity
        return self._tokens

    def try_acquire(self, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if the bucket holds them."""
        if self._refill() >= cost:
            self._tokens -= cost
            return True
        return False

    @property
    def available(self) -> float:
        """Tokens in the bucket now (refilled up to the clock's time)."""
        return self._refill()


def acquire_all(buckets: tuple[TokenBucket, ...]) -> bool:
    """Take one token from each of ``buckets`` if every one holds a token, else none.

    For nested caps (a namespace override's own within the gateway's): a cap that
    refuses must not leave the others spent.
    """
    if len(buckets) == 1:
        return buckets[0].try_acquire()
    if all(bucket.available >= 1.0 for bucket in buckets):
        for bucket in buckets:
            bucket.try_acquire()
        return True
    return False
