"""The gateway's event loop: asyncio's own, or uvloop's (the ``uvloop`` extra).

``eventLoop`` in the gateway config: ``auto`` (the default: uvloop when it is
installed), ``asyncio`` or ``uvloop`` (refused at start, naming the field, when the
package is not installed). Every process of a gateway runs the same one: the supervisor passes its
choice to the workers it starts. ``benchmarks/bench_workers.py --loops`` measures both.
"""

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["Choice", "LoopUnavailableError", "resolve", "run"]

Choice = Literal["auto", "asyncio", "uvloop"]
_T = TypeVar("_T")


class LoopUnavailableError(Exception):
    """``eventLoop: uvloop`` without the package."""


def resolve(choice: Choice) -> Literal["asyncio", "uvloop"]:
    """The loop ``choice`` means on this machine."""
    if choice == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    if choice == "uvloop":
        raise LoopUnavailableError(
            "eventLoop: uvloop is not installed (pip install 'gatetrace[uvloop]'), or use "
            "'asyncio' or 'auto'"
        )
    return "asyncio"


def run(main: Coroutine[Any, Any, _T], loop: Literal["asyncio", "uvloop"]) -> _T:
    """``asyncio.run(main)`` on the chosen loop."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
