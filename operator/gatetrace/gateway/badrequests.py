"""Logging malformed requests: one WARNING line each, no header values, rate-limited.

aiohttp logs a request it cannot parse at ERROR with a traceback whose message quotes
the offending bytes, so a bad request's ``Authorization: Bearer ...`` lands in the
log, and a client sending garbage in a loop fills it. The proxy's server is given a
:class:`RequestErrorLog` instead of aiohttp's logger: a parse error (the client's
fault) becomes ``malformed request from ADDR: Kind: reason`` at WARNING on
``gatetrace.gateway``, the reason cut before any quoted data (:func:`describe`: no
header value, no request target, nothing unprintable), at most ``burst`` lines
per ``window`` seconds, then one line counting what was suppressed (when the window
ends, whether or not another malformed request comes). What aiohttp keeps at DEBUG
(non-HTTP traffic on a connection's first request: TLS, scanners) stays at DEBUG, on
the same logger. Everything else (an error in the app itself) goes to aiohttp's
logger as before.
"""

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import http_exceptions

__all__ = ["RequestErrorLog", "describe"]

_log = logging.getLogger("gatetrace.gateway")
_aiohttp = logging.getLogger("aiohttp.server")


_QUOTED_NAME: Final = re.compile(r"""(['"])[!#$%&*+.^_`|~0-9A-Za-z-]{1,64}\1(?= header)""")
"""A quoted header name (``Duplicate 'Content-Length' header``): no data, kept."""
_DATA: Final = re.compile(r""":\s|\sb?['"]|b['"]|\n""")
"""Where the data aiohttp quotes after a reason starts (``: b'...'``, ``'GET /...'``)."""
REASON_LIMIT: Final = 80


def describe(exc: BaseException) -> str:
    """``Kind: reason`` of a parse error: one printable line without the request data
    aiohttp quotes after the reason (header values, the request line), at most
    :data:`REASON_LIMIT` characters of reason."""
    kind = type(exc).__name__
    message = str(getattr(exc, "message", "") or "").strip()
    if isinstance(exc, http_exceptions.InvalidURLError) and "\n" not in message:
        # the refused target itself, not a reason ('user:password@...', a token...)
        return f"{kind}: invalid request target"
    names = [m.span() for m in _QUOTED_NAME.finditer(message)]
    cut = len(message)
    for data in _DATA.finditer(message):
        quote = data.end() - 1
        if not any(start <= quote < end for start, end in names):
            cut = data.start()
            break
    reason = message[:cut].strip()
    if len(reason) > REASON_LIMIT:
        reason = reason[:REASON_LIMIT] + "..."
    if not reason.isprintable():
        reason = "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)
    return f"{kind}: {reason}" if reason else kind


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
        self._timer: asyncio.TimerHandle | None = None

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        if isinstance(exc_info, http_exceptions.HttpProcessingError):
            remote = args[0] if args else "?"
            self._malformed(str(remote), describe(exc_info))
            return
        _aiohttp.exception(msg, *args, exc_info=exc_info, **kw)

    def _malformed(self, remote: str, reason: str) -> None:
        now = self._clock()
        if now - self._window_start >= self.window:
            self._report_suppressed()
            self._window_start, self._logged = now, 0
        if self._logged >= self.burst:
            self._suppressed += 1
            if self._suppressed == 1:
                self._report_later(self._window_start + self.window - now)
            return
        self._logged += 1
        _log.warning("malformed request from %s: %s", remote, reason)

    def _report_later(self, delay: float) -> None:
        """Count the suppressed ones when the window ends, even if no request follows."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test): the next malformed request reports them
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(max(delay, 0.0), self._window_over)

    def _window_over(self) -> None:
        self._timer = None
        self._report_suppressed()
        self._window_start = float("-inf")

    def _report_suppressed(self) -> None:
        if self._suppressed:
            _log.warning(
                "%d more malformed requests not logged in the last %gs",
                self._suppressed,
                self.window,
            )
            self._suppressed = 0

    # -- the rest of the Logger surface aiohttp uses: aiohttp's own logger -------

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, http_exceptions.HttpProcessingError):  # e.g. a non-HTTP client
            remote = args[0] if args else "?"
            _log.debug("malformed request from %s: %s", remote, describe(exc))
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
