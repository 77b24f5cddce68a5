"""The row contract every ``bench_*.py`` module follows, and the shared timing helper.

A benchmark module exposes ``run() -> list[Row]`` (it may also keep a
``main()`` for running it alone). ``python -m benchmarks`` imports every
``bench_*`` module, calls ``run()`` and prints one table. A row compares our
figure with a peer's measured in the same process and run; ``goal_ratio`` is
the highest acceptable ``ours / peer`` (None: no verdict, for wall-clock figures
that move too much between runs to judge). Modules may return plain dicts with
the same keys (``name``, ``ours``, ``peer``, ``unit``, ``goal_ratio``);
:func:`as_row` accepts both.
"""

import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Row", "as_row", "compare"]


@dataclass(frozen=True, slots=True)
class Row:
    """One comparison: our figure and the peer's, in the same unit (lower is better)."""

    name: str
    """What was measured, e.g. ``span: start + 6 tags + finish``."""
    ours: float
    """Our figure (per operation)."""
    peer: float
    """The peer's figure for the same work, measured in the same run."""
    unit: str = "us"
    """Unit of both figures, e.g. ``us`` per operation."""
    goal_ratio: float | None = 0.5
    """The highest acceptable ``ours / peer``; None: a figure reported without a verdict
    (wall-clock rows, which move too much between runs on a shared machine to judge)."""
    peer_name: str = ""
    """Who the peer is (``opentelemetry-sdk 1.27``...), for the table's notes."""

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def judged(self) -> bool:
        """Whether the row carries a goal (and so a verdict)."""
        return self.goal_ratio is not None

    @property
    def met(self) -> bool:
        """Within the goal (True for a row without one: it cannot miss)."""
        return self.goal_ratio is None or self.ratio <= self.goal_ratio


def as_row(value: "Row | Mapping[str, Any]") -> Row:
    """Accept a :class:`Row` or a dict with its field names."""
    if isinstance(value, Row):
        return value
    goal = value.get("goal_ratio", 0.5)
    return Row(
        name=str(value["name"]),
        ours=float(value["ours"]),
        peer=float(value["peer"]),
        unit=str(value.get("unit", "us")),
        goal_ratio=None if goal is None else float(goal),
        peer_name=str(value.get("peer_name", "")),
    )


def compare(
    ours: Callable[[], object],
    peer: Callable[[], object],
    *,
    number: int = 20_000,
    repeat: int = 7,
) -> tuple[float, float]:
    """Best µs per call of ``ours`` and ``peer``, timed with :mod:`timeit` in alternating rounds.

    Alternating lets both sides see the same load on a shared machine; the
    best round is the least disturbed one.
    """
    ours()  # warm up both (imports, caches, lazily built state)
    peer()
    best_ours = best_peer = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, timeit.timeit(ours, number=number))
        best_peer = min(best_peer, timeit.timeit(peer, number=number))
    return best_ours / number * 1e6, best_peer / number * 1e6
