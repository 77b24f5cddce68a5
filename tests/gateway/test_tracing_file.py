"""The tracing file watcher: ConfigMap-style ..data symlink swaps, revision rules,
bad files counted while the running config stays, YAML files, the polling loop."""

import asyncio
import json
import os
import pathlib
from typing import Any

import pytest

from gatetrace.gateway import state, tracing_apply, tracing_file
from gatetrace.runtime import metrics

pytestmark = pytest.mark.timeout(30)


class ConfigMapDir:
    """Lays files out as the kubelet does: <dir>/tracing.json -> ..data/tracing.json,
    ..data -> ..<version>; an update writes a new version dir and swaps ..data atomically."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.count = 0
        self.path = root / "tracing.json"

    def write(self, text: str) -> None:
        self.count += 1
        version = self.root / f"..2026_11_25_{self.count}"
        version.mkdir()
        (version / "tracing.json").write_text(text)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to("..data/tracing.json")

    def write_doc(self, revision: int, config: dict[str, Any]) -> None:
        self.write(json.dumps({"revision": revision, "version": "x", "config": config}))


def _cfg(rate: float) -> dict[str, Any]:
    return {"sampling": {"sampler": {"type": "probabilistic", "rate": rate}}}


def _make(path: pathlib.Path) -> tuple[tracing_file.TracingFileWatcher, state.TracingHolder]:
    holder = state.TracingHolder()
    registry = metrics.Registry()
    applier = tracing_apply.Applier(holder, service="gw", registry=registry, drain_seconds=0)
    watcher = tracing_file.TracingFileWatcher(path, applier, registry=registry, interval=0.02)
    return watcher, holder


def _rate(holder: state.TracingHolder) -> float:
    active = holder.current
    assert active is not None
    rate: float = active.config["sampling"]["sampler"]["rate"]
    return rate


async def test_configmap_symlink_swaps_are_applied(tmp_path: pathlib.Path) -> None:
    cm = ConfigMapDir(tmp_path)
    watcher, holder = _make(cm.path)
    assert await watcher.check() is None  # missing: nothing to do, not an error
    assert holder.current is None
    cm.write_doc(1, _cfg(0.1))
    assert await watcher.check() == "applied"
    assert holder.current is not None
    assert holder.current.revision == 1
    assert await watcher.check() is None  # unchanged file: not read again
    cm.write_doc(2, _cfg(0.2))
    assert await watcher.check() == "applied"
    assert holder.current.revision == 2
    assert _rate(holder) == 0.2
    cm.write_doc(2, _cfg(0.2))  # same content, new inode
    assert await watcher.check() == "unchanged"
    assert watcher.loads.value(("applied",)) == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{broken", "parse"),
        ("[1, 2]", "parse"),
        ('{"config": {}}', "invalid"),
        ('{"revision": "3", "config": {}}', "invalid"),
        ('{"revision": 3}', "invalid"),
        ('{"revision": 3, "config": {"sampling": {"sampler": {"type": "x"}}}}', "invalid"),
        ('{"revision": 3, "config": {}, "sources": 5}', "invalid"),
    ],
)
async def test_bad_file_is_counted_and_the_running_config_stays(
    tmp_path: pathlib.Path, text: str, reason: str
) -> None:
    cm = ConfigMapDir(tmp_path)
    watcher, holder = _make(cm.path)
    cm.write_doc(1, _cfg(0.1))
    await watcher.check()
    before = holder.current
    cm.write(text)
    assert await watcher.check() == reason
    assert holder.current is before
    assert watcher.loads.value((reason,)) == 1
    assert await watcher.check() is None  # not retried until the file changes
    cm.write_doc(2, _cfg(0.3))
    assert await watcher.check() == "applied"
    assert _rate(holder) == 0.3


async def test_not_utf8_is_a_parse_problem(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tracing.json"
    path.write_bytes(b"\xff\xfe\x00")
    watcher, holder = _make(path)
    assert await watcher.check() == "parse"
    assert holder.current is None


async def test_alias_bomb_is_refused_with_a_short_log_line(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """400 bytes of nested aliases once expanded to gigabytes and a 35 MB log line."""
    cm = ConfigMapDir(tmp_path)
    watcher, holder = _make(cm.path)
    cm.write_doc(1, _cfg(0.5))
    assert await watcher.check() == "applied"
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    cm.write("\n".join(levels) + "\nrevision: 2\nconfig: {tags: *a8}\n")
    assert await watcher.check() == "parse"
    assert holder.current is not None and holder.current.revision == 1
    [record] = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert "alias" in record.getMessage() and len(record.getMessage()) < 500


async def test_huge_value_is_not_repeated_in_the_log(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    cm = ConfigMapDir(tmp_path)
    watcher, _holder = _make(cm.path)
    cm.write_doc(1, {"sampling": {"sampler": {"type": "x" * 1_000_000}}})
    assert await watcher.check() == "invalid"
    [record] = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(record.getMessage()) < 1000


async def test_older_revision_in_the_file_is_stale(tmp_path: pathlib.Path) -> None:
    cm = ConfigMapDir(tmp_path)
    watcher, holder = _make(cm.path)
    await watcher.applier.apply(_cfg(0.5), revision=5, source="admin")
    cm.write_doc(4, _cfg(0.1))
    assert await watcher.check() == "stale"
    assert holder.current is not None
    assert holder.current.revision == 5


async def test_yaml_file_plain_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tracing.yaml"
    path.write_text(
        "revision: 3\nconfig:\n  sampling:\n    sampler: {type: const, decision: true}\n"
    )
    watcher, holder = _make(path)
    assert await watcher.check() == "applied"
    assert holder.current is not None
    assert holder.current.config["sampling"]["sampler"]["decision"] is True


async def test_file_that_disappears_and_comes_back(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "tracing.json"
    path.write_text(json.dumps({"revision": 1, "config": _cfg(0.1)}))
    watcher, holder = _make(path)
    assert await watcher.check() == "applied"
    path.unlink()
    assert await watcher.check() is None
    assert holder.current is not None  # the running config stays
    path.write_text(json.dumps({"revision": 2, "config": _cfg(0.4)}))
    assert await watcher.check() == "applied"
    assert _rate(holder) == 0.4


async def test_polling_loop_picks_up_changes(tmp_path: pathlib.Path) -> None:
    cm = ConfigMapDir(tmp_path)
    watcher, holder = _make(cm.path)
    watcher.start()
    try:
        cm.write_doc(1, _cfg(0.1))
        for _ in range(200):
            if holder.current is not None:
                break
            await asyncio.sleep(0.01)
        assert holder.current is not None
        cm.write_doc(2, _cfg(0.7))
        for _ in range(200):
            if holder.current.revision == 2:
                break
            await asyncio.sleep(0.01)
        assert _rate(holder) == 0.7
    finally:
        await watcher.stop()
    await watcher.stop()  # idempotent


def test_parse_document() -> None:
    assert tracing_file.parse_document('{"revision": 2, "config": {}}') == (2, {}, [])
    with pytest.raises(ValueError, match="revision"):
        tracing_file.parse_document('{"revision": -1, "config": {}}')
