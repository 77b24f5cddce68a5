"""Last known good (standalone mode, real gateway admin APIs on 127.0.0.1): a policy that
was valid and becomes invalid keeps its last valid generation in force."""

import asyncio
import json
import pathlib
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from gatetrace.operator import core, delivery, plan, planner, records, standalone
from tests.operator import gateways as gw

DEFAULT = """\
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {name: cluster-default, namespace: gatetrace-system}
spec:
  sampling:
    sampler: {type: probabilistic, rate: 0.25}
"""
TEAM = """\
apiVersion: gatetrace.dev/v1alpha1
kind: TracingPolicy
metadata: {name: team, namespace: shop}
spec:
  tags: {team: shop}
"""

BROKEN = {
    "invalid field": DEFAULT.replace("rate: 0.25", "rate: 2.5"),
    "typo in a key": DEFAULT.replace("sampler:", "samplr:"),
    "YAML syntax error": DEFAULT.replace("{type: probabilistic", "[type: probabilistic"),
    "metadata: oops": DEFAULT.replace(
        "metadata: {name: cluster-default, namespace: gatetrace-system}", "metadata: oops"
    ),
    "kind typo": DEFAULT.replace("kind: TracingPolicy", "kind: TracingPolicyy"),
    "not a mapping": "- just\n- a list\n",
    "not UTF-8": "kind: Trac\xe9ngPolicy\n",
}


_CLIENTS: list[delivery.AdminClient] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _CLIENTS:
        await _CLIENTS.pop().close()


def _reconciler(*, hold_back: bool = False) -> tuple[core.Reconciler, standalone.FileSink]:
    sink = standalone.FileSink()
    client = delivery.AdminClient(lambda: gw.TOKEN)
    _CLIENTS.append(client)
    pusher = delivery.Pusher(client, retry=delivery.RetryPolicy(attempts=1, timeout=2.0))
    reconciler = core.Reconciler(
        sink, pusher, planner.IndexPlanner("gatetrace-system"), hold_back_invalid=hold_back
    )
    return reconciler, sink


def _write(path: pathlib.Path, text: str) -> None:
    path.write_bytes(text.encode("latin-1" if "\xe9" in text else "utf-8"))


@pytest.mark.parametrize("breakage", sorted(BROKEN))
async def test_a_broken_edit_keeps_the_last_valid_generation(
    tmp_path: pathlib.Path, breakage: str
) -> None:
    async with gw.gateways(1) as gateways:
        gateway = gateways[0]
        reconciler, sink = _reconciler()
        reconciler.upsert_pod(standalone.GatewaySpec("gw", gateway.url, "shop").pod())
        folder = standalone.PolicyFolder(tmp_path)
        _write(tmp_path / "default.yaml", DEFAULT)
        _write(tmp_path / "team.yaml", TEAM)
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        before = gateway.holder.current
        assert before is not None and before.config["sampling"]["sampler"]["rate"] == 0.25

        _write(tmp_path / "default.yaml", BROKEN[breakage])
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        after = gateway.holder.current
        assert after is not None
        assert (after.revision, after.version) == (before.revision, before.version)

        record = reconciler.policies[plan.PolicyRef("gatetrace-system", "cluster-default")]
        assert record.stale
        conditions = {c["type"]: c for c in sink.statuses[record.ref.key]["conditions"]}
        assert conditions["Accepted"]["status"] == "False"
        assert conditions["Degraded"]["status"] == "True"
        assert (
            "generation 1 (the last valid one) stays in force" in conditions["Degraded"]["message"]
        )
        assert sink.statuses[record.ref.key]["lastValidGeneration"] == 1
        if breakage in {"metadata: oops", "YAML syntax error", "kind typo"}:
            assert "default.yaml#1" in conditions["Accepted"]["message"]
        assert any(e[2] == "Invalid" for e in sink.events if e[0] == record.ref.key)
        assert reconciler.metrics.stale_policies.value() == 1

        _write(tmp_path / "default.yaml", DEFAULT.replace("0.25", "0.5"))
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        fixed = gateway.holder.current
        assert fixed is not None and fixed.revision > before.revision
        assert fixed.config["sampling"]["sampler"]["rate"] == 0.5
        assert not reconciler.policies[record.ref].stale


async def test_a_policy_never_valid_contributes_nothing_and_deleting_reverts(
    tmp_path: pathlib.Path,
) -> None:
    async with gw.gateways(1) as gateways:
        gateway = gateways[0]
        reconciler, _ = _reconciler()
        reconciler.upsert_pod(standalone.GatewaySpec("gw", gateway.url, "shop").pod())
        folder = standalone.PolicyFolder(tmp_path)
        _write(tmp_path / "default.yaml", DEFAULT)
        _write(tmp_path / "team.yaml", TEAM.replace("tags: {team: shop}", "tags: {team: 7}"))
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        current = gateway.holder.current
        assert current is not None and "team" not in current.config.get("tags", {})

        (tmp_path / "default.yaml").unlink()
        standalone.sync_folder(reconciler, folder, force=True)
        await reconciler.converge()
        current = gateway.holder.current
        assert current is not None and current.config["sampling"]["sampler"]["rate"] != 0.25


async def test_without_history_pods_an_invalid_policy_may_reach_are_not_pushed(
    tmp_path: pathlib.Path,
) -> None:
    async with gw.gateways(2) as gateways:
        reconciler, _ = _reconciler(hold_back=True)
        reconciler.upsert_pod(standalone.GatewaySpec("a", gateways[0].url, "shop").pod())
        reconciler.upsert_pod(standalone.GatewaySpec("b", gateways[1].url, "other").pod())
        _write(tmp_path / "default.yaml", DEFAULT)
        selected = TEAM.replace("spec:\n", "spec:\n  selector: {matchLabels: {x: y}}\n")
        _write(tmp_path / "team.yaml", selected.replace("{team: shop}", "{team: 7}"))
        standalone.sync_folder(reconciler, standalone.PolicyFolder(tmp_path), force=True)
        await reconciler.converge()
        # the selector is readable and selects no pod: both pods get the default
        assert all(g.holder.current is not None for g in gateways)

        _write(tmp_path / "default.yaml", BROKEN["invalid field"])
        fresh, _ = _reconciler(hold_back=True)
        for name, g, ns in (("a", gateways[0], "shop"), ("b", gateways[1], "other")):
            fresh.upsert_pod(standalone.GatewaySpec(name, g.url, ns).pod())
        revisions = [g.holder.current.revision for g in gateways if g.holder.current]
        standalone.sync_folder(fresh, standalone.PolicyFolder(tmp_path), force=True)
        await fresh.converge()
        assert [g.holder.current.revision for g in gateways if g.holder.current] == revisions
        states = {k: s.state for k, s in fresh.pod_states.items()}
        assert set(states.values()) == {"Failed"}
        assert all("--status-dir" in s.message for s in fresh.pod_states.values())


def _once(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatetrace.cli", "operator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"GATETRACE_ADMIN_TOKEN": gw.TOKEN, "PATH": "/usr/bin:/bin"},
        check=False,
    )


async def test_separate_once_runs_keep_the_last_valid_content_in_the_status_dir(
    tmp_path: pathlib.Path,
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    status = tmp_path / "made" / "status"  # created if missing
    configs = tmp_path / "made" / "configs"
    async with gw.gateways(1) as gateways:
        gateway = gateways[0]
        args = [
            "--standalone", str(policies), "--once", "--gateway", f"gw={gateway.url}",
            "--status-dir", str(status), "--config-dir", str(configs),
        ]  # fmt: skip
        _write(policies / "default.yaml", DEFAULT)

        first = await asyncio.to_thread(_once, args)
        assert first.returncode == 0, first.stderr
        before = gateway.holder.current
        assert before is not None and status.is_dir() and configs.is_dir()

        _write(policies / "default.yaml", BROKEN["metadata: oops"])
        second = await asyncio.to_thread(_once, args)
        assert second.returncode == 1
        assert "gatetrace-system/cluster-default is invalid" in second.stderr
        after = gateway.holder.current
        assert after is not None and after.config == before.config
        summary = json.loads(second.stdout)
        assert summary["policies"]["gatetrace-system/cluster-default"]["stale"] is True


async def test_an_operator_restarted_under_an_invalid_policy_holds_its_pods_back() -> None:
    """Kubernetes mode after a restart: the invalid generation's status remembers that an
    earlier one was valid, whose body this instance never saw. The pods it may reach keep
    what they run (not pushed); a policy never valid still contributes nothing."""
    async with gw.gateways(2) as (shop_gw, other_gw):
        reconciler, sink = _reconciler()
        reconciler.upsert_pod(
            standalone.GatewaySpec("shop-gw", shop_gw.url, "shop", {"app": "gw"}).pod()
        )
        reconciler.upsert_pod(standalone.GatewaySpec("other-gw", other_gw.url, "other").pod())
        await gw.put_by_hand(shop_gw.url, 7, {"tags": {"team": "before-restart"}})
        was_valid = {
            "observedGeneration": 3,
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Valid"}],
        }
        body = {
            "apiVersion": "gatetrace.dev/v1alpha1",
            "kind": "TracingPolicy",
            "metadata": {"name": "team", "namespace": "shop", "generation": 4, "uid": "u"},
            "spec": {"selector": {"matchLabels": {"app": "gw"}}, "tags": {"team": 7}},
            "status": was_valid,
        }
        reconciler.upsert_policy(records.record_from_object(body))
        await reconciler.converge()

        current = shop_gw.holder.current
        assert current is not None and current.revision == 7  # not pushed over
        assert other_gw.holder.current is not None  # out of the selector's reach
        assert reconciler.pod_states["shop/shop-gw"].state == "Failed"
        assert "it restarted" in reconciler.pod_states["shop/shop-gw"].message
        status = sink.statuses["shop/team"]
        assert status["lastValidGeneration"] == 3
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["Accepted"]["status"] == "False"
        assert conditions["Degraded"]["reason"] == "StaleGeneration"
        assert reconciler.metrics.stale_policies.value() == 1

        # its own status (as just published) keeps remembering on the next restart
        body["status"] = status
        restarted, _ = _reconciler()
        restarted.upsert_policy(records.record_from_object(body))
        assert restarted.policies[plan.PolicyRef("shop", "team")].remembered_valid_generation == 3

        # never valid: nothing remembered, contributes nothing, does not hold back
        del body["status"]
        fresh, _ = _reconciler()
        fresh.upsert_pod(
            standalone.GatewaySpec("shop-gw", shop_gw.url, "shop", {"app": "gw"}).pod()
        )
        fresh.upsert_policy(records.record_from_object(body))
        await fresh.converge()
        assert fresh.pod_states["shop/shop-gw"].state == "Applied"
