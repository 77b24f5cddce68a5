"""The one path every tracing config takes into the gateway: validate, build, swap.

``PUT /admin/v1/tracing``, the watched tracing file and the bootstrap config
all call :meth:`Applier.apply`. Under the holder's lock it checks the
revision, validates the document, builds *every* runtime object, and only then
starts the new reporters and swaps the :class:`~gatetrace.gateway.state.ActiveTracing`
in one assignment. Any error before the swap leaves the running config
untouched. The old reporters are flushed and closed after a grace period, so
requests that started with the old config still hand their spans to it.

Revision rules: an older revision is refused (:class:`StaleRevisionError`); the
same revision with the same content hash is an idempotent success; the same
revision with different content is refused too.
"""

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from gatetrace.embed import retro_settings as _retro
from gatetrace.embed import state as _state
from gatetrace.policy import admin_protocol as _protocol
from gatetrace.policy import build as _build
from gatetrace.policy import errors as _errors
from gatetrace.policy import model as _model
from gatetrace.runtime import metrics as _metrics
from gatetrace.runtime import span as _span

__all__ = [
    "Applied",
    "Applier",
    "ApplyError",
    "InvalidConfigError",
    "Prepared",
    "StaleRevisionError",
]

_log = logging.getLogger(__name__)


class ApplyError(Exception):
    """A config was not applied; nothing running changed."""


class StaleRevisionError(ApplyError):
    """The revision is older than the running one (or equal with other content)."""

    def __init__(self, message: str, running: int) -> None:
        super().__init__(message)
        self.running = running


class InvalidConfigError(ApplyError):
    """The config failed validation or could not be built; ``errors`` are ``{loc, msg}``."""

    def __init__(self, errors: Sequence[_errors.FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid config")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated, built config not running yet (:meth:`Applier.prepare`)."""

    parts: _build.RuntimeParts
    config: _model.TracingConfig
    active: _state.ActiveTracing

    @property
    def revision(self) -> int:
        return self.active.revision

    @property
    def version(self) -> str:
        return self.active.version


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of a successful apply."""

    revision: int
    version: str
    changed: bool
    """False for an idempotent re-apply of the running revision."""


class _ApplyMetrics:
    def __init__(self, registry: _metrics.Registry) -> None:
        self.applies = registry.counter(
            "gatetrace_config_applies",
            "Tracing config apply attempts by source and outcome",
            ["source", "outcome"],
        )
        self.revision = registry.gauge(
            "gatetrace_config_revision", "Revision of the running tracing config", []
        )
        self.applied_at = registry.gauge(
            "gatetrace_config_last_apply_timestamp_seconds",
            "Unix time the running tracing config was applied",
            [],
        )
        self.loaded = registry.gauge(
            "gatetrace_config_loaded", "1 when a tracing config is running", []
        )


def validate(document: Any) -> _model.TracingConfig:
    """Validate an effective config; raise :class:`InvalidConfigError` naming the fields."""
    if not isinstance(document, Mapping):
        raise InvalidConfigError(
            [_errors.FieldError("config", f"expected an object, got {type(document).__name__}")]
        )
    try:
        return _model.TracingConfig.model_validate(document)
    except pydantic.ValidationError as e:
        failed: _errors.ValidationFailed = _errors.from_pydantic(e, prefix=("config",))
        raise InvalidConfigError([_without_secrets(err) for err in failed.errors]) from e


_GOT = re.compile(r" \(got .*\)$", re.DOTALL)


def _without_secrets(error: _errors.FieldError) -> _errors.FieldError:
    """Reporter header values are secrets: an error about one must not echo it (the
    operator copies 422 messages into the policy's status)."""
    if ".headers" not in error.loc:
        return error
    return _errors.FieldError(error.loc, _GOT.sub(" (value redacted)", error.msg))


class Applier:
    """Validates, builds and swaps tracing configs into ``holder``."""

    def __init__(
        self,
        holder: _state.TracingHolder,
        *,
        service: str,
        registry: _metrics.Registry,
        exporters: _build.ExporterFactory | None = None,
        drain_seconds: float = 2.0,
        close_timeout: float = 5.0,
        on_applied: Callable[[_build.RuntimeParts, _model.TracingConfig], None] | None = None,
        process: Sequence[tuple[str, _span.TagValue]] | None = None,
    ) -> None:
        self.holder = holder
        self.service = service
        self.process = process
        """The process's resource attributes, on every span (see ``build_runtime``)."""
        self.registry = registry
        self.exporters = exporters
        self.drain_seconds = drain_seconds
        """At most this many seconds the old reporters wait for the requests that started
        under them to end (they close as soon as the last one has)."""
        self.close_timeout = close_timeout
        self.on_applied = on_applied
        self.metrics = _ApplyMetrics(registry)
        self.metrics.loaded.set(1 if holder.current is not None else 0)
        self._closing: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()

    async def apply(
        self,
        document: Any,
        *,
        revision: int,
        source: str,
        sources: Sequence[Mapping[str, Any]] = (),
    ) -> Applied:
        """Apply ``document`` as ``revision``; raise :class:`ApplyError` and change nothing
        on any problem."""
        try:
            async with self.holder.lock:
                result = await self._apply_locked(document, revision, sources)
        except ApplyError as e:
            self._refused(source, e)
            raise
        self._counted(source, result)
        return result

    async def prepare(
        self,
        document: Any,
        *,
        revision: int,
        source: str,
        sources: Sequence[Mapping[str, Any]] = (),
    ) -> "Prepared | Applied":
        """The first half of :meth:`apply`, for a config that several processes take as one
        revision (gateway workers): validate and build everything, start nothing. A
        :class:`Prepared` holds the holder's lock until :meth:`commit` or :meth:`abort`;
        an :class:`Applied` (the running revision again) or an :class:`ApplyError` does not."""
        await self.holder.lock.acquire()
        try:
            result = self._prepare(document, revision, sources)
        except ApplyError as e:
            self.holder.lock.release()
            self._refused(source, e)
            raise
        if isinstance(result, Applied):
            self.holder.lock.release()
            self._counted(source, result)
        return result

    def commit(self, prepared: "Prepared", source: str) -> Applied:
        """Run a config from :meth:`prepare` (start its reporters, swap) and release the lock."""
        try:
            result = self._swap(prepared)
        finally:
            self.holder.lock.release()
        self._counted(source, result)
        return result

    async def abort(self, prepared: "Prepared") -> None:
        """Drop a config from :meth:`prepare` (its reporters never started) and release the lock."""
        try:
            await close_reporters(prepared.active.reporters, self.close_timeout)
        finally:
            self.holder.lock.release()

    def _refused(self, source: str, error: ApplyError) -> None:
        self.metrics.applies.inc((source, type(error).__name__))
        _log.warning("tracing config from %s not applied: %s", source, error)

    def _counted(self, source: str, result: Applied) -> None:
        self.metrics.applies.inc((source, "applied" if result.changed else "unchanged"))
        if result.changed:
            _log.info(
                "tracing config revision %d (%s) applied from %s",
                result.revision,
                result.version,
                source,
            )

    async def _apply_locked(
        self, document: Any, revision: int, sources: Sequence[Mapping[str, Any]]
    ) -> Applied:
        """Validate, build and swap, the holder's lock held (subclasses may add a step
        between building and swapping)."""
        prepared = self._prepare(document, revision, sources)
        if isinstance(prepared, Applied):
            return prepared
        return self._swap(prepared)

    def _prepare(
        self, document: Any, revision: int, sources: Sequence[Mapping[str, Any]]
    ) -> "Prepared | Applied":
        problem = _protocol.revision_problem(revision)
        if problem is not None:
            raise InvalidConfigError([_errors.FieldError("revision", problem)])
        config = validate(document)
        running = self.holder.current
        if running is not None and revision <= running.revision:
            version = _build.config_version(config)
            if revision == running.revision and version == running.version:
                return Applied(revision, version, False)
            if revision == running.revision:
                raise StaleRevisionError(
                    f"revision {revision} is already running with other content "
                    f"(version {running.version}); send a higher revision",
                    running.revision,
                )
            raise StaleRevisionError(
                f"revision {revision} is older than the running revision {running.revision}",
                running.revision,
            )
        try:
            parts = _build.build_runtime(
                config,
                service=self.service,
                registry=self._build_registry(),
                exporters=self.exporters,
                process=self.process,
            )
        except _errors.ValidationFailed as e:
            raise InvalidConfigError([_prefixed(err) for err in e.errors]) from e
        active = _state.ActiveTracing.from_parts(
            parts,
            revision=revision,
            config=config.model_dump(mode="json", by_alias=True, exclude_none=True),
            sources=sources,
            retro=_retro.from_model(config.retro),
        )
        return Prepared(parts, config, active)

    def _build_registry(self) -> _metrics.Registry:
        """Where the built runtime's metrics go (the reporters', the tracer's)."""
        return self.registry

    def _start(self, parts: _build.RuntimeParts) -> None:
        for processor in parts.processors:
            processor.start()

    def _swap(self, prepared: "Prepared") -> Applied:
        parts, active = prepared.parts, prepared.active
        self._start(parts)
        old = self.holder.swap(active)
        if self.on_applied is not None:
            try:
                self.on_applied(parts, prepared.config)
            except Exception:  # the swap happened; a hook bug must not turn it into a 500
                _log.exception("tracing config applied, but the on_applied hook failed")
        self.metrics.revision.set(active.revision)
        self.metrics.applied_at.set(active.applied_at)
        self.metrics.loaded.set(1)
        if old is not None and old.reporters:
            task = asyncio.get_running_loop().create_task(self._retire(old))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return Applied(active.revision, parts.version, True)

    async def _retire(self, old: _state.ActiveTracing) -> None:
        """Wait for the last request that started under the old config to end (at most
        ``drain_seconds``, less at shutdown), then flush and close its reporters and
        drop the metric series of reporters the new config no longer has."""
        idle = asyncio.ensure_future(old.inflight.idle())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait(
                {idle, stop}, timeout=self.drain_seconds, return_when="FIRST_COMPLETED"
            )
        finally:
            idle.cancel()
            stop.cancel()
        if old.inflight.count:
            _log.warning(
                "%d request(s) of tracing revision %d still running after %.0fs: "
                "closing its reporters anyway",
                old.inflight.count,
                old.revision,
                self.drain_seconds,
            )
        await close_reporters(old.reporters, self.close_timeout)
        current = self.holder.current
        kept = {_labels(r) for r in (current.reporters if current is not None else ())}
        for reporter in old.reporters:
            labels = _labels(reporter)
            if labels is not None and labels not in kept:
                reporter.metrics.forget()  # type: ignore[attr-defined]

    async def close(self, timeout: float | None = None) -> None:
        """Shut down: retire pending old reporters now and flush/close the running ones."""
        deadline = self.close_timeout if timeout is None else timeout
        self._stop.set()
        current = self.holder.current
        jobs: list[Any] = list(self._closing)
        if current is not None:
            jobs.append(close_reporters(current.reporters, deadline))
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    def retiring(self) -> int:
        """Old reporter sets still waiting to be closed."""
        return len(self._closing)


def _labels(reporter: _state.Closable) -> tuple[str, ...] | None:
    metrics = getattr(reporter, "metrics", None)
    labels = getattr(metrics, "labels", None)
    return tuple(labels) if labels is not None else None


async def close_reporters(reporters: Sequence[_state.Closable], timeout: float) -> None:
    """Flush and close ``reporters`` concurrently within ``timeout`` seconds; never raises."""
    if not reporters:
        return
    results = await asyncio.gather(
        *(r.shutdown(timeout) for r in reporters), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            _log.warning("closing a reporter failed: %r", result)


def _prefixed(error: _errors.FieldError) -> _errors.FieldError:
    loc = error.loc
    return _errors.FieldError(f"config.{loc}" if loc else "config", error.msg)
