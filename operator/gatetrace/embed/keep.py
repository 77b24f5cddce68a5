"""Keep requests: ``POST {breadcrumb}/retro/v1/traces/{traceId}`` to each hop of a kept trace.

Sent by a gateway that kept a pending trace, and by a service whose own error keeps one
(its local priority policy). Fire and forget: the request path never waits for them.
Bounded: at most ``keepConcurrency`` in flight (more wait, up to :data:`MAX_WAITING`, then
they are dropped and counted), each within ``keepTimeoutMs``. Only breadcrumbs whose IP
is in ``allowedNetworks`` are called; others are refused and counted, never contacted.
The request carries ``Authorization: Bearer <token>`` (the admin token the operator's
Secret gives every managed pod) and ``{"reason": ...}``.
"""

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import aiohttp

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import retro_settings as _retro
from gatetrace.runtime import ids
from gatetrace.runtime import metrics as _metrics

__all__ = ["KEEP_PATH", "MAX_WAITING", "Keeper", "keep_path"]

_log = logging.getLogger(__name__)

KEEP_PATH: Final = "/retro/v1/traces/{trace_id}"
"""The retro endpoint on a kit's admin port (``trace_id``: 32 lowercase hex digits)."""
MAX_WAITING: Final = 1024
"""Keep requests queued behind the concurrency bound at most; more are dropped."""


def keep_path(trace_id: int) -> str:
    return KEEP_PATH.format(trace_id=ids.format_trace_id(trace_id))


class Keeper:
    """Sends keep requests; one per process side (gateway or service)."""

    def __init__(self, token: str, registry: _metrics.Registry | None = None) -> None:
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits: dict[int, asyncio.Semaphore] = {}
        registry = registry if registry is not None else _metrics.Registry()
        self._outcomes = registry.counter(
            "gatetrace_retro_keeps",
            "Keep requests by outcome (ok, refused_network, failed, timeout, dropped, http_NNN)",
            ["outcome"],
        )

    def keep(
        self,
        trace_id: int,
        reason: str,
        addresses: Sequence[str],
        settings: _retro.RetroSettings,
    ) -> int:
        """Schedule a keep on each allowed address; how many were scheduled."""
        scheduled = 0
        for text in addresses[: settings.max_breadcrumbs]:
            address = _breadcrumbs.parse_address(text)
            if address is None or not settings.allows(address[1]):
                self._outcomes.inc(("refused_network",))
                continue
            if len(self._tasks) >= MAX_WAITING:
                self._outcomes.inc(("dropped",))
                continue
            task = asyncio.get_running_loop().create_task(
                self._send(text + keep_path(trace_id), reason, settings)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            scheduled += 1
        return scheduled

    def _limit(self, concurrency: int) -> asyncio.Semaphore:
        limit = self._limits.get(concurrency)
        if limit is None:
            self._limits.clear()  # a config change: the old bound's holders finish on theirs
            limit = self._limits[concurrency] = asyncio.Semaphore(concurrency)
        return limit

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    async def _send(self, url: str, reason: str, settings: _retro.RetroSettings) -> None:
        async with self._limit(settings.keep_concurrency):
            try:
                async with self._client().post(
                    url,
                    json={"reason": reason},
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=aiohttp.ClientTimeout(total=settings.keep_timeout_seconds),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    outcome = "ok" if response.status == 200 else f"http_{response.status}"
            except TimeoutError:
                outcome = "timeout"
            except (aiohttp.ClientError, OSError) as e:
                _log.debug("keep %s failed: %r", url, e)
                outcome = "failed"
        self._outcomes.inc((outcome,))

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the keep requests in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Cancel what is still in flight and close the client session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
