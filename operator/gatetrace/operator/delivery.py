"""Pushing effective configs to gateway admin endpoints.

``PUT /admin/v1/tracing`` on each target, concurrently under a bound, each
with a timeout and a few retries with exponential backoff and jitter for
the failures that may heal (connection refused, timeouts, 5xx). Terminal
answers are not retried: 401 (wrong token), 422 (config rejected) and 409
(the pod runs a newer revision: the caller must re-plan with a higher one;
see :attr:`PushResult.running_revision`). A push never raises.
"""

import asyncio
import enum
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gatetrace.policy import admin_protocol as _protocol

__all__ = [
    "AdminClient",
    "PushOutcome",
    "PushRequest",
    "PushResult",
    "Pusher",
    "RetryPolicy",
    "RunningState",
]

TRACING_PATH = _protocol.TRACING_PATH


class PushOutcome(enum.Enum):
    APPLIED = "Applied"
    STALE = "Stale"
    """The pod runs a revision at least as new (409): re-plan above ``running_revision``."""
    REJECTED = "Rejected"
    """422: the pod refused the config (validation); retrying the same config cannot help."""
    UNAUTHORIZED = "Unauthorized"
    UNREACHABLE = "Unreachable"
    TIMEOUT = "Timeout"
    SERVER_ERROR = "ServerError"
    SUPERSEDED = "Superseded"
    """A newer revision for the same target was requested while this one was under way."""

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset({PushOutcome.UNREACHABLE, PushOutcome.TIMEOUT, PushOutcome.SERVER_ERROR})


@dataclass(frozen=True, slots=True)
class PushRequest:
    target: str
    """A stable key for the pod: ``namespace/name`` (or the standalone gateway name)."""
    url: str
    """The admin base URL, ``http://<podIP>:<adminPort>``."""
    revision: int
    version: str
    config: Mapping[str, Any]
    sources: Sequence[Mapping[str, str]] = ()
    """The policies ``config`` came from (:func:`admin_protocol.source_entries`)."""


@dataclass(frozen=True, slots=True)
class PushResult:
    target: str
    revision: int
    version: str
    outcome: PushOutcome
    message: str = ""
    attempts: int = 1
    seconds: float = 0.0
    running_revision: int | None = None
    """What the pod reported running, when known (after a 409, or a successful push)."""

    @property
    def applied(self) -> bool:
        return self.outcome is PushOutcome.APPLIED


@dataclass(frozen=True, slots=True)
class RunningState:
    revision: int
    version: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a push to one target is retried."""

    attempts: int = 3
    """Tries per push, the first included."""
    timeout: float = 5.0
    """Seconds per HTTP exchange (connect + answer)."""
    backoff: float = 0.2
    """First backoff in seconds; doubled each retry, with full jitter."""
    max_backoff: float = 5.0
    """Upper bound of one backoff."""


class AdminClient:
    """Speaks the gateway admin API. The token is read through a callable so a
    rotated Secret is picked up without rebuilding the client."""

    def __init__(
        self,
        token: Callable[[], str],
        *,
        session: aiohttp.ClientSession | None = None,
        connector_limit: int = 64,
    ) -> None:
        self._token = token
        self._session = session
        self._owns_session = session is None
        self._connector_limit = connector_limit

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connector_limit),
                json_serialize=json.dumps,
            )
            self._owns_session = True
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/json"}

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()

    async def get_running(self, url: str, timeout: float) -> RunningState | None:
        """The revision/version a gateway runs, or None when it cannot be read."""
        try:
            async with self._client().get(
                url + TRACING_PATH,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status == 404:  # up, but no tracing config loaded yet
                    return RunningState(0, "")
                if response.status != 200:
                    return None
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        running = _protocol.parse_running(body)
        if running is None:
            return None
        return RunningState(running.revision, running.version)

    async def put_once(self, request: PushRequest, timeout: float) -> tuple[PushOutcome, str]:
        payload = json.dumps(
            _protocol.put_body(request.revision, request.config, request.sources),
            separators=(",", ":"),
        )
        try:
            async with self._client().put(
                request.url + TRACING_PATH,
                data=payload,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                text = await response.text()
                status = response.status
        except TimeoutError:
            return PushOutcome.TIMEOUT, f"no answer within {timeout:g}s"
        except aiohttp.ClientConnectionError as e:
            return PushOutcome.UNREACHABLE, f"{type(e).__name__}: {e}"
        except aiohttp.ClientError as e:
            return PushOutcome.UNREACHABLE, f"{type(e).__name__}: {e}"
        return _classify(status, text)


def _classify(status: int, text: str) -> tuple[PushOutcome, str]:
    detail = _protocol.error_detail(text)
    if 200 <= status < 300:
        return PushOutcome.APPLIED, ""
    if status == 409:
        return PushOutcome.STALE, detail or "the gateway runs a newer revision"
    if status in (400, 413, 422):
        return PushOutcome.REJECTED, f"HTTP {status}: {detail}"
    if status in (401, 403):
        return PushOutcome.UNAUTHORIZED, f"HTTP {status}: admin token refused"
    if status == 429 or status >= 500:
        return PushOutcome.SERVER_ERROR, f"HTTP {status}: {detail}"
    return PushOutcome.REJECTED, f"HTTP {status}: {detail}"


class Pusher:
    """Pushes to many targets at once, at most ``concurrency`` in flight.

    It remembers the newest revision requested per target: an attempt for an
    older revision that is still retrying gives up (``Superseded``) instead of
    racing the newer one, so a stale revision never lands over a newer one.
    """

    def __init__(
        self,
        client: AdminClient,
        *,
        concurrency: int = 32,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._newest: dict[str, int] = {}
        self._sleep = sleep

    def forget(self, target: str) -> None:
        self._newest.pop(target, None)

    async def push_all(self, requests: Sequence[PushRequest]) -> list[PushResult]:
        for request in requests:
            if request.revision > self._newest.get(request.target, -1):
                self._newest[request.target] = request.revision
        return list(await asyncio.gather(*(self.push(r) for r in requests)))

    async def push(self, request: PushRequest) -> PushResult:
        if request.revision > self._newest.get(request.target, -1):
            self._newest[request.target] = request.revision
        started = time.monotonic()
        policy = self.retry
        outcome, message = PushOutcome.UNREACHABLE, ""
        attempt = 0
        for attempt in range(1, policy.attempts + 1):
            if self._newest.get(request.target, -1) > request.revision:
                return self._result(request, PushOutcome.SUPERSEDED, "", attempt - 1, started)
            async with self._semaphore:
                outcome, message = await self.client.put_once(request, policy.timeout)
            if not outcome.retryable:
                break
            if attempt < policy.attempts:
                delay = min(policy.max_backoff, policy.backoff * (2 ** (attempt - 1)))
                await self._sleep(random.uniform(0, delay))
        running = None
        if outcome is PushOutcome.STALE:
            state = await self.client.get_running(request.url, policy.timeout)
            running = state.revision if state else None
            if running is not None:
                message = f"the gateway runs revision {running} (pushed {request.revision})"
        elif outcome is PushOutcome.APPLIED:
            running = request.revision
        return self._result(request, outcome, message, attempt, started, running)

    @staticmethod
    def _result(
        request: PushRequest,
        outcome: PushOutcome,
        message: str,
        attempts: int,
        started: float,
        running: int | None = None,
    ) -> PushResult:
        return PushResult(
            request.target,
            request.revision,
            request.version,
            outcome,
            message,
            attempts,
            time.monotonic() - started,
            running,
        )
