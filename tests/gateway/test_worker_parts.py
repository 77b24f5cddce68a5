"""The pieces under the gateway's workers: the CPU count they default to (cgroup v1/v2
quota, cpuset), spans as plain data and back, the framed channel, and an apply split in
prepare / commit / abort."""

import asyncio
import os
import pathlib
import pickle
import socket

import pytest

from gatetrace.gateway import config, cpus, span_wire, state, tracing_apply, worker_channel
from gatetrace.runtime import metrics, sampling, span, tracer
from gatetrace.runtime.span_size import retained_bytes as size_of

pytestmark = pytest.mark.timeout(30)


def _cgroup(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_quota(
    tmp_path: pathlib.Path, files: dict[str, str], quota: float | None
) -> None:
    assert cpus.cgroup_cpu_quota(_cgroup(tmp_path, files)) == quota


def test_available_cpus_rounds_the_quota_up_within_the_cpuset(tmp_path: pathlib.Path) -> None:
    allowed = len(os.sched_getaffinity(0))
    assert cpus.available_cpus(_cgroup(tmp_path, {})) == allowed
    root = _cgroup(tmp_path / "a", {"cpu.max": "150000 100000"})
    assert cpus.available_cpus(root) == min(allowed, 2)
    root = _cgroup(tmp_path / "b", {"cpu.max": "10000 100000"})
    assert cpus.available_cpus(root) == 1
    root = _cgroup(tmp_path / "c", {"cpu.max": f"{(allowed + 8) * 100000} 100000"})
    assert cpus.available_cpus(root) == allowed


def test_workers_config_default_and_bounds() -> None:
    assert config.parse_config({"workers": 3}).worker_count == 3
    assert config.parse_config({}).worker_count == min(config.MAX_WORKERS, cpus.available_cpus())
    for bad in (0, 65, "two"):
        with pytest.raises(config.ConfigError, match="workers"):
            config.parse_config({"workers": bad})


def _finished_spans() -> list[span.Span]:
    t = tracer.Tracer(
        span.Resource("svc", (("k8s.pod.name", "p-1"), ("process.pid", 7))),
        sampler=sampling.ConstSampler(True),
        processor=_Collect(),
    )
    root = t.start_span("GET /a", kind=span.SpanKind.SERVER, parent=None)
    root.set_tag("http.response.status_code", 503)
    root.set_tag("ok", True)
    root.log({"event": "exception", "exception.type": "ValueError"})
    root.set_status(span.StatusCode.ERROR, "boom")
    child = t.start_span("GET", kind=span.SpanKind.CLIENT, parent=root)
    child.finish()
    root.finish()
    return [child, root]


class _Collect:
    def on_end(self, s: span.Span) -> None:
        return None


def test_spans_survive_the_trip_to_the_supervisor() -> None:
    spans = _finished_spans()
    wire = pickle.loads(pickle.dumps(span_wire.encode(spans)))  # noqa: S301 -- our own bytes
    back, sizes = span_wire.decode(wire)
    assert sizes == [size_of(s, with_context=False) for s in spans]
    for before, after in zip(spans, back, strict=True):
        assert (after.trace_id, after.span_id, after.parent_id) == (
            before.trace_id,
            before.span_id,
            before.parent_id,
        )
        assert (after.name, after.kind, after.start_ns, after.end_ns) == (
            before.name,
            before.kind,
            before.start_ns,
            before.end_ns,
        )
        assert after.resource == before.resource
        assert after.tags == before.tags
        assert after.logs == before.logs
        assert after.status == before.status
        assert after.is_finished and not after.recording
        assert after.is_local_root == before.is_local_root


def test_unfinished_spans_are_not_shipped() -> None:
    t = tracer.Tracer(span.Resource("svc"))
    open_span = t.start_span("x", parent=None)
    assert span_wire.encode([open_span]) == []


async def test_the_channel_frames_messages_both_ways_and_reports_the_end() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a = await worker_channel.Channel.open(left)
    b = await worker_channel.Channel.open(right)
    big = {"op": "spans", "spans": [("x" * 1000, i) for i in range(2000)]}
    a.send(big)
    a.send({"op": "ready"})
    assert await b.receive() == big
    assert await b.receive() == {"op": "ready"}
    calls = worker_channel.Calls(b)

    async def answer() -> None:
        request = await a.receive()
        a.send({"id": request["id"], "ok": False, "kind": "invalid", "message": "no"})

    task = asyncio.ensure_future(answer())
    reader = asyncio.ensure_future(_route(b, calls))
    with pytest.raises(worker_channel.RemoteError, match="no"):
        await calls.call("prepare", 5.0, revision=1)
    await task
    a.close()
    await reader
    with pytest.raises(worker_channel.ChannelClosedError):
        await calls.call("status", 5.0)
    b.close()


async def _route(channel: worker_channel.Channel, calls: worker_channel.Calls) -> None:
    try:
        while True:
            calls.answered(await channel.receive())
    except worker_channel.ChannelClosedError:
        calls.fail_all()


async def test_an_oversized_frame_ends_the_channel() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    b = await worker_channel.Channel.open(right)
    left.sendall((worker_channel.MAX_FRAME_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(worker_channel.ChannelClosedError, match="exceeds"):
        await b.receive()
    left.close()
    b.close()


CONST = {"sampling": {"sampler": {"type": "const", "decision": True}}}


async def test_prepare_builds_without_running_until_commit_and_abort_changes_nothing() -> None:
    holder = state.TracingHolder()
    applier = tracing_apply.Applier(holder, service="gw", registry=metrics.Registry())
    prepared = await applier.prepare(CONST, revision=1, source="t")
    assert isinstance(prepared, tracing_apply.Prepared)
    assert holder.current is None and holder.lock.locked()
    applied = applier.commit(prepared, "t")
    assert applied.revision == 1 and applied.changed
    assert holder.current is not None and holder.current.revision == 1
    assert not holder.lock.locked()
    again = await applier.prepare(CONST, revision=1, source="t")  # the running one
    assert isinstance(again, tracing_apply.Applied) and not again.changed
    assert not holder.lock.locked()
    other = await applier.prepare(
        {"sampling": {"sampler": {"type": "const", "decision": False}}}, revision=2, source="t"
    )
    assert isinstance(other, tracing_apply.Prepared)
    await applier.abort(other)
    assert holder.current.revision == 1 and not holder.lock.locked()
    with pytest.raises(tracing_apply.StaleRevisionError):
        await applier.prepare(CONST, revision=0, source="t")
    assert not holder.lock.locked()
    with pytest.raises(tracing_apply.InvalidConfigError, match=r"config\.sampling"):
        await applier.prepare({"sampling": {"sampler": {"type": "?"}}}, revision=3, source="t")
    assert not holder.lock.locked()
    await applier.close(1.0)


def test_the_event_loop_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatetrace.gateway import event_loop

    assert event_loop.resolve("asyncio") == "asyncio"
    assert event_loop.resolve("uvloop") == "uvloop"  # the test extra installs it
    assert event_loop.resolve("auto") == "uvloop"
    monkeypatch.setattr(event_loop.importlib.util, "find_spec", lambda name: None)
    assert event_loop.resolve("auto") == "asyncio"
    with pytest.raises(event_loop.LoopUnavailableError, match=r"eventLoop: uvloop is not"):
        event_loop.resolve("uvloop")

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert event_loop.run(which(), "uvloop") == "uvloop"
    assert event_loop.run(which(), "asyncio") == "asyncio"
