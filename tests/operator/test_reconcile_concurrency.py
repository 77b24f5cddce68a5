"""The reconciler when kopf handlers overlap: a drift check or a deletion that
runs while a converge pass is under way (real gateway admin APIs on 127.0.0.1)."""

import asyncio
import pathlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from gatetrace.operator import core, delivery, plan, planner, standalone
from tests.operator import gateways as gw

POLICY = """\
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  sampling:
    sampler: {{type: probabilistic, rate: {rate}}}
"""


def _write(folder: pathlib.Path, name: str, rate: float) -> None:
    (folder / f"{name}.yaml").write_text(POLICY.format(name=name, rate=rate))


class HeldReads(delivery.AdminClient):
    """A real admin client whose drift reads hand their answer over only when released."""

    def __init__(self) -> None:
        super().__init__(lambda: gw.TOKEN)
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def get_running(self, url: str, timeout: float) -> delivery.RunningState | None:
        running = await super().get_running(url, timeout)
        self.read.set()
        await self.release.wait()
        return running


class HeldStatus(standalone.FileSink):
    """A sink whose first status write of ``held`` waits until released."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_status(self, ref: plan.PolicyRef, status: Mapping[str, Any]) -> None:
        if ref.key == self.held and not self.release.is_set():
            self.reached.set()
            await self.release.wait()
        await super().publish_status(ref, status)


@pytest.fixture
async def client() -> AsyncIterator[HeldReads]:
    held = HeldReads()
    yield held
    await held.close()


def _reconciler(sink: core.Sink, client: delivery.AdminClient) -> core.Reconciler:
    pusher = delivery.Pusher(
        client, retry=delivery.RetryPolicy(attempts=1, timeout=2.0, backoff=0.01)
    )
    return core.Reconciler(sink, pusher, planner.IndexPlanner("gatetrace-system"))


async def test_a_drift_answer_older_than_a_push_that_landed_is_no_drift(
    tmp_path: pathlib.Path, client: HeldReads
) -> None:
    async with gw.gateways(1) as gateways:
        reconciler = _reconciler(standalone.FileSink(), client)
        reconciler.upsert_pod(standalone.GatewaySpec("gw", gateways[0].url).pod())
        folder = standalone.PolicyFolder(tmp_path)
        _write(tmp_path, "team", 0.2)
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        assert reconciler.pod_states["default/gw"].state == "Applied"

        drift = asyncio.create_task(reconciler.check_drift())
        await asyncio.wait_for(client.read.wait(), 5)  # it read revision 1
        _write(tmp_path, "team", 0.5)
        standalone.sync_folder(reconciler, folder, force=True)
        await asyncio.wait_for(reconciler.converge(), 5)  # revision 2 lands meanwhile
        client.release.set()
        await asyncio.wait_for(drift, 5)

        state = reconciler.pod_states["default/gw"]
        assert (state.revision, state.state) == (2, "Applied")
        assert reconciler.metrics.drift.total() == 0


async def test_a_policy_deleted_during_a_pass_gets_status_when_created_again(
    tmp_path: pathlib.Path, client: HeldReads
) -> None:
    async with gw.gateways(1) as gateways:
        sink = HeldStatus(held="default/a")
        reconciler = _reconciler(sink, client)
        reconciler.upsert_pod(standalone.GatewaySpec("gw", gateways[0].url).pod())
        _write(tmp_path, "a", 0.2)
        _write(tmp_path, "b", 0.3)
        records = {r.ref.key: r for r in standalone.PolicyFolder(tmp_path).load()}
        for record in records.values():
            reconciler.upsert_policy(record)

        converging = asyncio.create_task(reconciler.converge())
        await asyncio.wait_for(sink.reached.wait(), 5)  # the pass publishes a's status
        reconciler.delete_policy(plan.PolicyRef("default", "b"))  # kubectl delete b
        sink.release.set()
        await asyncio.wait_for(converging, 5)
        await reconciler.converge()

        sink.statuses.clear()
        reconciler.upsert_policy(records["default/b"])  # kubectl apply b again: no status yet
        await reconciler.converge()
        assert "default/b" in sink.statuses


def _record(generation: int, uid: str, rate: float) -> core.PolicyRecord:
    body = {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {"name": "team", "namespace": "default", "uid": uid},
        "spec": {"sampling": {"sampler": {"type": "probabilistic", "rate": rate}}},
    }
    return core.PolicyRecord(plan.PolicyRef("default", "team"), generation, "", body)


def test_an_older_generation_arriving_late_does_not_replace_the_newer(
    client: HeldReads,
) -> None:
    """kopf's update handler and the periodic Secret re-read both ingest a policy;
    the re-read of generation 1 may finish after the update to generation 2."""
    reconciler = _reconciler(standalone.FileSink(), client)
    ref = plan.PolicyRef("default", "team")
    assert reconciler.upsert_policy(_record(2, "u1", 0.5))
    assert not reconciler.upsert_policy(_record(1, "u1", 0.2))
    assert reconciler.policies[ref].generation == 2
    assert reconciler.upsert_policy(_record(1, "u2", 0.3))  # deleted and created again
    assert reconciler.policies[ref].body["metadata"]["uid"] == "u2"
