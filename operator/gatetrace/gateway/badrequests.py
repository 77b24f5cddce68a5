"""Logging malformed requests: one WARNING line each, no header values, rate-limited.

aiohttp logs a request it cannot parse at ERROR with a traceback whose message quotes
the offending bytes, so a bad request's ``Authorization: Bearer ...`` lands in the
log, and a client sending garbage in a loop fills it. The proxy's server is given a
:class:`RequestErrorLog` instead of aiohttp's logger: a parse error (the client's
fault) becomes ``malformed request from ADDR: Kind: reason`` at WARNING on
``gatetrace.gateway``, the reason cut before any quoted data, at most ``burst`` lines
per ``window`` seconds, then one line counting what was suppressed. Everything else
(an error in the app itself) goes to aiohttp's logger as before.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import http_exceptions

__all__ = ["RequestErrorLog", "describe"]

_log = logging.getLogger("gatetrace.gateway")
_aiohttp = logging.getLogger("aiohttp.server")


def describe(exc: BaseException) -> str:
    """``Kind: reason`` of a parse error, without the bytes aiohttp quotes after a colon."""
    message = str(getattr(exc, "message", "") or "").strip()
    for stop in (":", "'", '"', "\n"):
        message = message.split(stop, 1)[0]
    message = message.strip()[:80]
    kind = type(exc).__name__
    return f"{kind}: {message}" if message else kind


class RequestErrorLog:
    """Stands in for aiohttp's server logger (``logger=`` of the server)."""

    def __init__(
        self,
        *,
        burst: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window = window
        self._clock = clock
        self._window_start = float("-inf")
        self._logged = 0
        self._suppressed = 0

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        if isinstance(exc_info, http_exceptions.HttpProcessingError):
            remote = args[0] if args else "?"
            self._malformed(str(remote), describe(exc_info))
            return
        _aiohttp.exception(msg, *args, exc_info=exc_info, **kw)

    def _malformed(self, remote: str, reason: str) -> None:
        now = self._clock()
        if now - self._window_start >= self.window:
            if self._suppressed:
                _log.warning(
                    "%d more malformed requests not logged in the last %.0fs",
                    self._suppressed,
                    self.window,
                )
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged >= self.burst:
            self._suppressed += 1
            return
        self._logged += 1
        _log.warning("malformed request from %s: %s", remote, reason)

    # -- the rest of the Logger surface aiohttp uses: aiohttp's own logger -------

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, http_exceptions.HttpProcessingError):  # e.g. a non-HTTP client
            remote = args[0] if args else "?"
            _aiohttp.debug("malformed request from %s: %s", remote, describe(exc))
            return
        _aiohttp.debug(msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        _aiohttp.info(msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        _aiohttp.warning(msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        _aiohttp.error(msg, *args, **kw)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging.Logger's name
        return _aiohttp.isEnabledFor(level)
