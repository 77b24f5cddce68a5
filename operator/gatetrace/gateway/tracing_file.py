"""Watching the tracing config file (the operator's ConfigMap mount) and applying it.

The file holds ``{"revision": N, "version": "...", "config": {...}}`` (JSON, or
YAML for hand-written files). Kubernetes updates a ConfigMap volume by
writing a new timestamped directory and swapping the ``..data`` symlink, so
the path keeps its name while the file behind it changes: we poll
``os.stat`` (which follows the symlinks) about once a second and compare
inode, device, size and mtime — a cheap syscall, no inotify needed.

A changed file goes through the same :class:`~.tracing_apply.Applier` path
as ``PUT /admin/v1/tracing``: revision rules apply, and a bad file (unreadable,
not JSON/YAML, invalid) is logged and counted while the running config stays.
A file state is handled once; it is retried only when the file changes again.
"""

import asyncio
import contextlib
import json
import logging
import os
import pathlib
from typing import Any, NamedTuple

from gatetrace.gateway import tracing_apply
from gatetrace.policy import messages as _messages
from gatetrace.policy import yamlsafe as _yamlsafe
from gatetrace.runtime import metrics as _metrics

__all__ = ["FileState", "TracingFileWatcher", "parse_document"]

_log = logging.getLogger(__name__)


class FileState(NamedTuple):
    """What identifies one version of the file behind the path."""

    device: int
    inode: int
    size: int
    mtime_ns: int


class FileProblemError(ValueError):
    """The file could not be turned into ``(revision, config)``; ``reason`` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def parse_document(text: str | bytes) -> tuple[int, Any, list[Any]]:
    """``(revision, config, sources)`` from the file's text (JSON or YAML).

    YAML goes through the bounded reader (alias bombs, depth); JSON, which has
    no aliases, is read by :mod:`json`, whose nesting limit is Python's own.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        try:
            document = _yamlsafe.load_one(text)
        except _yamlsafe.YamlError as e:
            raise FileProblemError("parse", f"neither JSON nor YAML: {e}") from e
    if not isinstance(document, dict):
        raise FileProblemError(
            "parse", f"expected an object {{revision, config}}, got {type(document).__name__}"
        )
    revision = document.get("revision")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        message = f"revision: must be an integer >= 0, got {_messages.echo(revision)}"
        raise FileProblemError("invalid", message)
    if "config" not in document:
        raise FileProblemError("invalid", "config: field required")
    sources = document.get("sources", [])
    if not isinstance(sources, list):
        raise FileProblemError("invalid", "sources: must be a list")
    return revision, document["config"], sources


class TracingFileWatcher:
    """Polls ``path`` every ``interval`` seconds and applies each new version."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        applier: tracing_apply.Applier,
        *,
        registry: _metrics.Registry,
        interval: float = 1.0,
    ) -> None:
        self.path = pathlib.Path(path)
        self.applier = applier
        self.interval = interval
        self._seen: FileState | None = None
        self._missing_logged = False
        self._task: asyncio.Task[None] | None = None
        self.loads = registry.counter(
            "gatetrace_tracing_file_loads",
            "Tracing file versions seen, by outcome (applied, unchanged, stale, or the error)",
            ["outcome"],
        )

    def _stat(self) -> FileState | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return FileState(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    async def check(self) -> str | None:
        """Poll once; apply the file if it changed. Returns the outcome, None if unchanged."""
        try:
            state = self._stat()
        except OSError as e:
            return self._problem(None, FileProblemError("read", f"cannot stat: {e}"))
        if state is None:
            if not self._missing_logged:
                _log.info("tracing file %s does not exist (yet)", self.path)
                self._missing_logged = True
            self._seen = None
            return None
        self._missing_logged = False
        if state == self._seen:
            return None
        self._seen = state
        try:
            text = self.path.read_bytes()
            revision, config, sources = parse_document(text)
        except FileProblemError as e:
            return self._problem(state, e)
        except OSError as e:
            return self._problem(state, FileProblemError("read", f"cannot read: {e}"))
        try:
            applied = await self.applier.apply(
                config, revision=revision, source="file", sources=sources
            )
        except tracing_apply.StaleRevisionError as e:
            # the operator's PUT may have been faster than the kubelet's volume update
            _log.info("tracing file %s not applied: %s", self.path, e)
            self.loads.inc(("stale",))
            return "stale"
        except tracing_apply.ApplyError as e:
            return self._problem(state, FileProblemError("invalid", str(e)))
        outcome = "applied" if applied.changed else "unchanged"
        self.loads.inc((outcome,))
        return outcome

    def _problem(self, state: FileState | None, error: FileProblemError) -> str:
        _log.warning(
            "tracing file %s rejected (%s); keeping the running config: %s",
            self.path,
            error.reason,
            error,
        )
        self.loads.inc((error.reason,))
        return error.reason

    async def run(self) -> None:
        """Poll until cancelled; an unexpected error is logged and polling goes on."""
        while True:
            try:
                await self.check()
            except Exception:
                _log.exception("tracing file watcher: unexpected error")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
