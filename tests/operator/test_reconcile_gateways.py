"""The reconcile/push loop against real gateway admin APIs on 127.0.0.1
(standalone mode: policies from files, gateways by URL)."""

import pathlib
import socket
import textwrap
from collections.abc import AsyncIterator, Sequence

import pytest

from gatetrace.operator import core, delivery, planner, pods, standalone
from tests import loopback
from tests.operator import gateways as gw

POLICY = """\
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  sampling:
    sampler: {{type: probabilistic, rate: {rate}}}
"""


def _write(folder: pathlib.Path, name: str, rate: float, namespace: str = "default") -> None:
    text = POLICY.format(name=name, rate=rate, namespace=namespace)
    (folder / f"{name}.yaml").write_text(text)


_CLIENTS: list[delivery.AdminClient] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()


def _reconciler(
    config_dir: pathlib.Path | None = None, attempts: int = 1
) -> tuple[core.Reconciler, standalone.FileSink]:
    sink = standalone.FileSink(config_dir=config_dir)
    client = delivery.AdminClient(lambda: gw.TOKEN)
    _CLIENTS.append(client)
    pusher = delivery.Pusher(
        client,
        retry=delivery.RetryPolicy(attempts=attempts, timeout=2.0, backoff=0.01),
    )
    return core.Reconciler(sink, pusher, planner.IndexPlanner("gatetrace-system")), sink


def _register(reconciler: core.Reconciler, specs: Sequence[standalone.GatewaySpec]) -> None:
    for spec in specs:
        reconciler.upsert_pod(spec.pod())


def _conditions(sink: standalone.FileSink, key: str) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in sink.statuses[key]["conditions"]}


async def _sync(reconciler: core.Reconciler, folder: standalone.PolicyFolder) -> None:
    standalone.sync_folder(reconciler, folder, force=True)
    await reconciler.converge()


async def test_apply_change_delete(tmp_path: pathlib.Path) -> None:
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    async with gw.gateways(3) as gateways:
        reconciler, sink = _reconciler(config_dir)
        specs = [standalone.GatewaySpec(f"gw{i}", g.url) for i, g in enumerate(gateways)]
        _register(reconciler, specs)
        folder = standalone.PolicyFolder(tmp_path)

        _write(tmp_path, "team", 0.25)
        await _sync(reconciler, folder)
        running = [await g.running() for g in gateways]
        assert all(r is not None and r[0] == 1 for r in running)
        for g in gateways:
            assert g.holder.current is not None
            sampler = g.holder.current.config["sampling"]["sampler"]
            assert sampler == {"type": "probabilistic", "rate": 0.25}
        applied = _conditions(sink, "default/team")["Applied"]
        assert applied["status"] == "True"
        assert applied["message"] == "3/3 pods at revision 1"
        assert (tmp_path / "configs" / "default.gw0.json").exists()
        assert any(e[2] == "Applied" for e in sink.events)

        _write(tmp_path, "team", 0.5)
        await _sync(reconciler, folder)
        for g in gateways:
            assert g.holder.current is not None
            assert g.holder.current.revision == 2
            assert g.holder.current.config["sampling"]["sampler"]["rate"] == 0.5

        (tmp_path / "team.yaml").unlink()
        await _sync(reconciler, folder)
        for g in gateways:
            assert g.holder.current is not None
            assert g.holder.current.revision == 3
            assert g.holder.current.config["sampling"]["sampler"]["rate"] == 0.01  # safe default


async def test_unreachable_pod_is_degraded_others_apply(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    async with gw.gateways(2) as gateways:
        reconciler, sink = _reconciler(attempts=2)
        specs = [standalone.GatewaySpec(f"gw{i}", g.url) for i, g in enumerate(gateways)]
        specs.append(standalone.GatewaySpec("dead", f"http://127.0.0.1:{dead_port}"))
        _register(reconciler, specs)
        _write(tmp_path, "team", 0.3)
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        c = _conditions(sink, "default/team")
        assert c["Applied"]["status"] == "False"
        assert c["Applied"]["message"] == "2/3 pods applied"
        assert c["Degraded"]["status"] == "True"
        assert "default/dead: Unreachable" in c["Degraded"]["message"]
        assert all(g.holder.current is not None for g in gateways)
        pods = {p["name"]: p["state"] for p in sink.statuses["default/team"]["pods"]}
        assert pods == {"gw0": "Applied", "gw1": "Applied", "dead": "Failed"}


async def test_policies_that_do_not_merge_name_the_pod_in_degraded(
    tmp_path: pathlib.Path,
) -> None:
    """Each policy is valid alone; together they are not (a batch larger than the queue) for
    the one pod both select. Neither policy may call itself healthy: both name the pod."""
    async with gw.gateways(2) as gateways:
        reconciler, sink = _reconciler()
        specs = [
            standalone.GatewaySpec("gw0", gateways[0].url, labels={"tier": "edge"}),
            standalone.GatewaySpec("gw1", gateways[1].url),
        ]
        _register(reconciler, specs)
        (tmp_path / "cluster.yaml").write_text(
            textwrap.dedent("""\
                apiVersion: gatetrace.dev/v1alpha1
                kind: TracingPolicy
                metadata: {name: cluster, namespace: gatetrace-system}
                spec:
                  batching: {maxQueueSize: 1000}
                """)
        )
        (tmp_path / "edge.yaml").write_text(
            textwrap.dedent("""\
                apiVersion: gatetrace.dev/v1alpha1
                kind: TracingPolicy
                metadata: {name: edge, namespace: default}
                spec:
                  selector: {matchLabels: {tier: edge}}
                  batching: {maxBatchSize: 2000}
                """)
        )
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        for key in ("gatetrace-system/cluster", "default/edge"):
            c = _conditions(sink, key)
            assert c["Accepted"]["status"] == "True"
            assert c["Degraded"]["status"] == "True", key
            assert "default/gw0: the merged config is invalid" in c["Degraded"]["message"]
            assert "maxBatchSize" in c["Degraded"]["message"]
        cluster = _conditions(sink, "gatetrace-system/cluster")
        assert cluster["Applied"]["message"] == "1/2 pods applied"  # gw1 took it
        assert gateways[0].holder.current is None  # nothing half-merged was pushed
        assert gateways[1].holder.current is not None
        assert any(e[1] == "Warning" and "gw0" in e[3] for e in sink.events)


async def test_a_gateway_wide_budget_is_shared_by_its_pods_and_re_divided(
    tmp_path: pathlib.Path,
) -> None:
    """``rateScope: gateway``: two pods of one gateway run half the traces/s each; when one
    goes, the other is pushed the whole budget."""
    async with gw.gateways(2) as gateways:
        reconciler, sink = _reconciler()
        pod_list = [
            pods.GatewayTarget(
                "default", f"edge-{i}", "edge", {pods.GATEWAY_LABEL: "edge"}, ready=True,
                admin_base=g.url,
            )
            for i, g in enumerate(gateways)
        ]  # fmt: skip
        for pod in pod_list:
            reconciler.upsert_pod(pod)
        (tmp_path / "budget.yaml").write_text(
            textwrap.dedent("""\
                apiVersion: gatetrace.dev/v1alpha1
                kind: TracingPolicy
                metadata: {name: budget, namespace: default}
                spec:
                  sampling:
                    rateScope: gateway
                    sampler: {type: rateLimiting, tracesPerSecond: 40}
                    prioritize: {errors: true, maxPerSecond: 10}
                """)
        )
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))

        def running(g: gw.AdminGateway) -> tuple[float, float]:
            assert g.holder.current is not None
            sampling = g.holder.current.config["sampling"]
            return sampling["sampler"]["tracesPerSecond"], sampling["prioritize"]["maxPerSecond"]

        assert [running(g) for g in gateways] == [(20, 5), (20, 5)]
        assert _conditions(sink, "default/budget")["Applied"]["message"] == (
            "2/2 pods at revision 1"
        )
        reconciler.delete_pod(pod_list[1].key)
        await reconciler.converge()
        assert running(gateways[0]) == (40, 10)
        assert gateways[0].holder.current is not None
        assert gateways[0].holder.current.revision == 2


async def test_invalid_policy_is_rejected_and_others_keep_working(tmp_path: pathlib.Path) -> None:
    async with gw.gateways(1) as gateways:
        reconciler, sink = _reconciler()
        _register(reconciler, [standalone.GatewaySpec("gw", gateways[0].url)])
        _write(tmp_path, "good", 0.2)
        (tmp_path / "bad.yaml").write_text(
            textwrap.dedent(POLICY.format(name="bad", rate=7, namespace="other"))
        )
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        bad = _conditions(sink, "other/bad")["Accepted"]
        assert bad["status"] == "False"
        assert "spec.sampling.sampler.rate" in bad["message"]
        current = gateways[0].holder.current
        assert current is not None
        assert current.config["sampling"]["sampler"]["rate"] == 0.2


async def test_drift_by_hand_is_repaired_above_the_hand_revision(tmp_path: pathlib.Path) -> None:
    async with gw.gateways(1) as gateways:
        reconciler, _sink = _reconciler()
        _register(reconciler, [standalone.GatewaySpec("gw", gateways[0].url)])
        _write(tmp_path, "team", 0.2)
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        assert await gateways[0].running() is not None
        hand = {"sampling": {"sampler": {"type": "const", "decision": True}}}
        assert await gw.put_by_hand(gateways[0].url, 40, hand) == 200
        await reconciler.check_drift()
        await reconciler.converge()
        current = gateways[0].holder.current
        assert current is not None
        assert current.revision == 41
        assert current.config["sampling"]["sampler"]["rate"] == 0.2


async def test_a_second_operator_never_pushes_a_stale_revision(tmp_path: pathlib.Path) -> None:
    async with gw.gateways(2) as gateways:
        first, _ = _reconciler()
        specs = [standalone.GatewaySpec(f"gw{i}", g.url) for i, g in enumerate(gateways)]
        _register(first, specs)
        folder = standalone.PolicyFolder(tmp_path)
        for rate in (0.1, 0.2, 0.3):
            _write(tmp_path, "team", rate)
            await _sync(first, folder)
        assert [g.holder.current.revision for g in gateways if g.holder.current] == [3, 3]
        # a takeover: a fresh operator without memory sees the same policy
        _write(tmp_path, "team", 0.4)
        second, sink = _reconciler()
        _register(second, specs)
        await _sync(second, standalone.PolicyFolder(tmp_path))
        for g in gateways:
            assert g.holder.current is not None
            assert g.holder.current.revision > 3
            assert g.holder.current.config["sampling"]["sampler"]["rate"] == 0.4
        assert _conditions(sink, "default/team")["Applied"]["status"] == "True"


async def test_new_gateway_gets_the_config(tmp_path: pathlib.Path) -> None:
    async with gw.gateways(2) as gateways:
        reconciler, _ = _reconciler()
        _register(reconciler, [standalone.GatewaySpec("gw0", gateways[0].url)])
        _write(tmp_path, "team", 0.2)
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        assert gateways[1].holder.current is None
        reconciler.upsert_pod(standalone.GatewaySpec("gw1", gateways[1].url).pod())
        await reconciler.converge()
        current = gateways[1].holder.current
        assert current is not None
        assert current.config["sampling"]["sampler"]["rate"] == 0.2


async def test_drift_check_counts_a_gateway_without_config(tmp_path: pathlib.Path) -> None:
    """A restarted gateway without its file answers 404: drift, not unreachable."""
    async with gw.gateways(1) as gateways:
        reconciler, _ = _reconciler()
        _register(reconciler, [standalone.GatewaySpec("gw", gateways[0].url)])
        _write(tmp_path, "team", 0.2)
        await _sync(reconciler, standalone.PolicyFolder(tmp_path))
        port = int(gateways[0].url.rsplit(":", 1)[1])
        await gateways[0].runner.cleanup()  # the pod restarts on the same address
        fresh = await gw.start_gateway(port=port)
        gateways[0].runner = fresh.runner
        try:
            await reconciler.check_drift()
            assert reconciler.metrics.drift.total() == 1
            assert reconciler.pod_states["default/gw"].state == "Pending"
            await reconciler.converge()
            assert fresh.holder.current is not None
            assert fresh.holder.current.config["sampling"]["sampler"]["rate"] == 0.2
        finally:
            await fresh.runner.cleanup()


async def test_a_hung_pod_never_holds_up_other_passes(tmp_path: pathlib.Path) -> None:
    """Pushes run outside the reconciler's lock: while one pass waits on a pod that
    accepts connections and never answers, another pass completes promptly."""
    import asyncio

    from aiohttp import web

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/admin/v1/tracing", hang)
    runner, hung_url = await loopback.start(app, shutdown_timeout=0.2)
    async with gw.gateways(1) as gateways:
        sink = standalone.FileSink()
        client = delivery.AdminClient(lambda: gw.TOKEN)
        _CLIENTS.append(client)
        pusher = delivery.Pusher(client, retry=delivery.RetryPolicy(attempts=1, timeout=3.0))
        reconciler = core.Reconciler(sink, pusher, planner.IndexPlanner("gatetrace-system"))
        reconciler.upsert_pod(standalone.GatewaySpec("hung", hung_url, namespace="a").pod())
        _write(tmp_path, "team", 0.2)
        standalone.sync_folder(reconciler, standalone.PolicyFolder(tmp_path), force=True)
        first = asyncio.create_task(reconciler.converge())  # waits ~3 s on the hung pod
        await asyncio.sleep(0.2)
        reconciler.upsert_pod(standalone.GatewaySpec("ok", gateways[0].url, namespace="b").pod())
        loop = asyncio.get_running_loop()
        started = loop.time()
        await reconciler.converge()
        assert loop.time() - started < 1.5
        assert gateways[0].holder.current is not None
        assert not first.done()
        await first
        assert reconciler.pod_states["a/hung"].state == "Failed"
        await reconciler.close()
    await runner.cleanup()


async def test_regaining_leadership_reloads_revisions_from_the_configmap(
    tmp_path: pathlib.Path,
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    policies = tmp_path / "policies"
    policies.mkdir()
    async with gw.gateways(1) as gateways:
        spec = standalone.GatewaySpec("gw", gateways[0].url)
        first, _ = _reconciler(configs)
        second, _ = _reconciler(configs)
        for reconciler in (first, second):
            _register(reconciler, [spec])
        folder = standalone.PolicyFolder(policies)
        _write(policies, "team", 0.1)
        await _sync(first, folder)  # revision 1
        for rate in (0.2, 0.3, 0.4):  # the other replica acts meanwhile
            _write(policies, "team", rate)
            await _sync(second, folder)
        assert gateways[0].holder.current is not None
        assert gateways[0].holder.current.revision == 4
        first.forget_revisions()
        _write(policies, "team", 0.5)
        await _sync(first, folder)
        assert gateways[0].holder.current.revision == 5
        assert first.metrics.pushes.value(("Stale",)) == 0  # no stale push on the way
