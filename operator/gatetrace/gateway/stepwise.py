"""Computations done in steps, so a long one on the event loop lets the proxy run between.

A computation is a generator that yields (``None``) after each bounded piece of work and
returns its result; :func:`drive` runs it to the end at once, :func:`drive_async` hands
the loop over between steps. :data:`STEP` is the size of a piece, in spans looked at.
"""

import asyncio
import heapq
import math
from collections.abc import Generator, Sequence
from typing import TypeVar

__all__ = ["STEP", "drive", "drive_async", "order_statistics", "percentile"]

_R = TypeVar("_R")

STEP = 500
"""Spans a step looks at (a few milliseconds of work) before it yields."""


def drive(steps: Generator[None, None, _R]) -> _R:
    """Run a stepwise computation to its end, synchronously."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _R = done.value
            return result


async def drive_async(steps: Generator[None, None, _R]) -> _R:
    """Run a stepwise computation, yielding to the event loop between steps."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: _R = done.value
            return result
        await asyncio.sleep(0)


def order_statistics(
    values: list[float], ranks: Sequence[int]
) -> Generator[None, None, list[float]]:
    """The values at the 1-based ``ranks`` of ``values`` sorted, in steps: runs of a few
    STEP sorted on their own, then merged STEP values at a time."""
    run_length = 4 * STEP
    runs: list[list[float]] = []
    for start in range(0, len(values), run_length):
        runs.append(sorted(values[start : start + run_length]))
        yield
    if len(runs) == 1:
        return [runs[0][rank - 1] for rank in ranks]
    found: dict[int, float] = {}
    merged = heapq.merge(*runs)
    position = 0
    value = 0.0
    for rank in sorted(set(ranks)):
        while position < rank:
            value = next(merged)
            position += 1
            if position % STEP == 0:
                yield
        found[rank] = value
    return [found[rank] for rank in ranks]


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
