"""Plans from the policy index: sources, conflicts, clamps, incremental updates."""

import pathlib
from typing import Any

from gatetrace.operator import planner, pods, records, standalone
from tests.operator import policydocs

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples" / "policies"


def _gw(name: str, namespace: str = "edge", **labels: str) -> pods.GatewayTarget:
    return pods.GatewayTarget(
        namespace, name, "api", {pods.GATEWAY_LABEL: "api", **labels}, "127.0.0.9", ready=True
    )


def _names(refs: Any) -> list[str]:
    return [r.key for r in refs]


def test_examples_plan_with_precedence_and_clamps() -> None:
    folder = standalone.PolicyFolder(EXAMPLES)
    policies = [p for p in folder.load() if p.valid]
    assert len(policies) >= 4
    plan = planner.IndexPlanner("gatetrace-system")
    pod = _gw("gw-1", **{"app.kubernetes.io/name": "api-gateway"})
    result = plan(policies, [pod])[pod.key]
    assert not result.error
    assert _names(result.sources)[:3] == [
        "gatetrace-system/cluster-default",
        "edge/edge-default",
        "edge/checkout",
    ]
    assert result.config["sampling"]["sampler"] == {"type": "probabilistic", "rate": 0.1}
    shop = result.config["namespaceOverrides"]["shop"]["sampling"]["sampler"]
    assert shop["rate"] == 0.5  # 0.8 asked, clamped to the gateway's maxRate
    assert any(
        c.policy.key == "shop/shop-sampling" and c.action == "clamped" for c in result.clamps
    )
    assert result.provenance


def test_same_level_conflict_the_older_wins() -> None:
    older = policydocs.record(
        "edge",
        "a-old",
        {"sampling": {"sampler": {"type": "const", "decision": True}}},
        "2026-01-01T00:00:00Z",
    )
    younger = policydocs.record(
        "edge",
        "b-new",
        {"sampling": {"sampler": {"type": "const", "decision": False}}},
        "2026-02-01T00:00:00Z",
    )
    plan = planner.IndexPlanner("gatetrace-system")
    pod = _gw("gw-1")
    result = plan([younger, older], [pod])[pod.key]
    assert result.config["sampling"]["sampler"] == {"type": "const", "decision": True}
    assert [(loser.key, winner.key) for loser, winner in result.conflicts] == [
        ("edge/b-new", "edge/a-old")
    ]


def test_incremental_unchanged_pods_keep_their_plan_objects() -> None:
    p1 = policydocs.record("edge", "edge-default", {"tags": {"team": "a"}})
    p2 = policydocs.record(
        "other", "other-default", {"tags": {"team": "b"}}, "2026-01-01T00:00:00Z"
    )
    plan = planner.IndexPlanner("gatetrace-system")
    edge, other = _gw("gw-1"), _gw("gw-2", namespace="other")
    first = plan([p1, p2], [edge, other])
    changed = policydocs.record(
        "other", "other-default", {"tags": {"team": "c"}}, "2026-01-01T00:00:00Z"
    )
    changed = records.record_from_object(
        {**changed.body, "metadata": {**changed.body["metadata"], "generation": 2}}
    )
    second = plan([p1, changed], [edge, other])
    assert second[edge.key] is first[edge.key]
    assert second[other.key].config["tags"] == {"team": "c"}
    assert second[other.key].version != first[other.key].version


def test_deleting_a_policy_reverts_to_the_rest_never_to_nothing() -> None:
    p1 = policydocs.record(
        "edge",
        "edge-default",
        {"sampling": {"sampler": {"type": "const", "decision": True}}},
        "2026-01-01T00:00:00Z",
    )
    plan = planner.IndexPlanner("gatetrace-system")
    pod = _gw("gw-1")
    with_policy = plan([p1], [pod])[pod.key]
    without = plan([], [pod])[pod.key]
    assert with_policy.version != without.version
    assert without.config["sampling"]["sampler"]["type"] == "probabilistic"  # safe default
    assert without.config["reporters"]


def test_invalid_policy_records_keep_field_paths() -> None:
    record = policydocs.record(
        "edge",
        "bad",
        {"sampling": {"sampler": {"type": "probabilistic", "rate": 2}}},
        "2026-01-01T00:00:00Z",
    )
    assert not record.valid
    locs = [loc for loc, _ in record.errors]
    assert any("sampling.sampler.rate" in loc for loc in locs), record.errors
