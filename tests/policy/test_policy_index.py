"""PolicyIndex bookkeeping: which pods a change touches, pods coming and going, targets."""

import pytest
from policy_builders import ROOT_NS, SELECT_GW, pod, pol

from gatetrace.policy import effective, errors, index, model

ALLOW = {"sampling": {"namespaceOverrides": {"allowed": True}}}


@pytest.fixture
def idx() -> index.PolicyIndex:
    idx = index.PolicyIndex(ROOT_NS)
    for p in (
        pod("edge", "gw-0", app="gw"),
        pod("edge", "gw-1", app="other"),
        pod("shop", "gw-2", app="gw"),
        pod(ROOT_NS, "gw-3", app="gw"),
    ):
        idx.upsert_pod(p)
    return idx


ALL = {("edge", "gw-0"), ("edge", "gw-1"), ("shop", "gw-2"), (ROOT_NS, "gw-3")}


def test_a_workload_policy_touches_only_the_pods_it_selects(idx: index.PolicyIndex) -> None:
    assert idx.upsert_policy(pol("edge", "w", SELECT_GW)) == {("edge", "gw-0")}
    # Re-selecting moves it: both the old and the new targets are touched.
    moved = pol("edge", "w", {"selector": {"matchLabels": {"app": "other"}}})
    assert idx.upsert_policy(moved) == {("edge", "gw-0"), ("edge", "gw-1")}
    assert idx.delete_policy("edge", "w") == {("edge", "gw-1")}
    assert idx.delete_policy("edge", "w") == frozenset()


def test_a_namespace_default_touches_its_namespace(idx: index.PolicyIndex) -> None:
    assert idx.upsert_policy(pol("edge", "n", {"tags": {"a": "b"}})) == {
        ("edge", "gw-0"),
        ("edge", "gw-1"),
    }


def test_a_namespace_default_with_sampling_touches_every_pod(idx: index.PolicyIndex) -> None:
    sampling = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.3}}}
    assert idx.upsert_policy(pol("shop", "n", sampling)) == ALL


def test_the_cluster_default_touches_every_pod(idx: index.PolicyIndex) -> None:
    assert idx.upsert_policy(pol(ROOT_NS, "c", {})) == ALL


def test_pods_come_go_and_change_labels(idx: index.PolicyIndex) -> None:
    idx.upsert_policy(pol("edge", "w", SELECT_GW | {"tags": {"w": "1"}}))
    assert idx.effective("edge", "gw-1").config.tags == {}
    assert idx.upsert_pod(pod("edge", "gw-1", app="gw")) == {("edge", "gw-1")}
    assert idx.effective("edge", "gw-1").config.tags == {"w": "1"}
    assert idx.delete_pod("edge", "gw-1") == {("edge", "gw-1")}
    assert idx.delete_pod("edge", "gw-1") == frozenset()
    with pytest.raises(KeyError):
        idx.effective("edge", "gw-1")
    assert {p.key for p in idx.pods()} == ALL - {("edge", "gw-1")}


def test_targets_are_the_pods_a_policy_wins_for(idx: index.PolicyIndex) -> None:
    idx.upsert_policy(pol(ROOT_NS, "c", ALLOW))
    idx.upsert_policy(pol("edge", "old", SELECT_GW, age=1))
    idx.upsert_policy(pol("edge", "new", SELECT_GW, age=2))
    idx.upsert_policy(pol("shop", "n", {"sampling": {"parentBased": False}}))
    assert idx.targets(ROOT_NS, "c") == ALL
    assert idx.targets("edge", "old") == {("edge", "gw-0")}
    assert idx.targets("edge", "new") == frozenset()
    # A namespace default is the pods' own default there, an override elsewhere.
    assert idx.targets("shop", "n") == ALL
    assert {p.key for p in idx.policies()} == {
        "gatetrace-system/c",
        "edge/old",
        "edge/new",
        "shop/n",
    }


def test_a_failed_merge_is_remembered_and_cleared_by_a_fix(idx: index.PolicyIndex) -> None:
    idx.upsert_policy(pol(ROOT_NS, "c", {"batching": {"maxQueueSize": 1000}}))
    idx.upsert_policy(pol("edge", "w", SELECT_GW | {"batching": {"maxBatchSize": 2000}}))
    results = idx.effective_all()
    failed = results[("edge", "gw-0")]
    assert isinstance(failed, errors.MergeFailed)
    assert failed.policies == (f"{ROOT_NS}/c", "edge/w")  # who answers for the pod
    assert isinstance(results[("edge", "gw-1")], effective.EffectiveConfig)
    with pytest.raises(errors.MergeFailed):
        idx.effective("edge", "gw-0")
    idx.upsert_policy(pol("edge", "w", SELECT_GW | {"batching": {"maxBatchSize": 500}}))
    assert idx.effective("edge", "gw-0").config.batching.max_batch_size == 500


def test_pods_with_the_same_winners_share_one_result(idx: index.PolicyIndex) -> None:
    idx.upsert_pod(pod("edge", "gw-9", app="gw"))
    idx.upsert_policy(pol("edge", "w", SELECT_GW))
    assert idx.effective("edge", "gw-0") is idx.effective("edge", "gw-9")


def test_the_wire_config_round_trips(idx: index.PolicyIndex) -> None:
    result = idx.effective("edge", "gw-0")
    assert result.revision == 0  # the operator assigns revisions, not the index
    assert model.TracingConfig.model_validate(effective.wire_config(result.config)) == result.config


def test_override_parts_cached_per_limits_stay_bounded_under_edits(
    idx: index.PolicyIndex,
) -> None:
    idx.upsert_policy(
        pol("shop", "d", {"sampling": {"sampler": {"type": "const", "decision": True}}})
    )
    for step in range(1, 400):
        limits = {"allowed": True, "maxRate": step / 1000}
        idx.upsert_policy(
            pol("edge", "w", SELECT_GW | {"sampling": {"namespaceOverrides": limits}})
        )
        override = idx.effective("edge", "gw-0").config.namespace_overrides["shop"]
        assert override.sampling.sampler.rate == step / 1000  # type: ignore[union-attr]
    assert len(idx._parts) <= index._MAX_LIMIT_SETS
