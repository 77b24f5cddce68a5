"""Precedence, merge, conflicts, deletion and namespace overrides, case by case."""

import dataclasses
from typing import Any

import pytest
from policy_builders import GW, ROOT_NS, SELECT_GW, at, pod, pol

from gatetrace.policy import effective, errors, index, merge, model
from gatetrace.policy import sampling as sampling_models


@dataclasses.dataclass
class Case:
    name: str
    policies: list[effective.PolicySource]
    pod: effective.GatewayPod
    expect: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, str] = dataclasses.field(default_factory=dict)
    conflicts: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    clamps: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)
    absent: list[str] = dataclasses.field(default_factory=list)


def probabilistic(rate: float) -> dict[str, Any]:
    return {"sampling": {"sampler": {"type": "probabilistic", "rate": rate}}}


CLUSTER = pol(ROOT_NS, "cluster", probabilistic(0.05))
ALLOW = {"namespaceOverrides": {"allowed": True, "maxRate": 0.5, "maxTracesPerSecond": 100}}

CASES = [
    Case(
        "no policies: built-in defaults",
        [],
        pod("edge", **GW),
        expect={"sampling.sampler.rate": 0.01, "batching.maxQueueSize": 2048},
        provenance={
            "sampling.sampler": merge.DEFAULT_SOURCE,
            "batching.maxQueueSize": merge.DEFAULT_SOURCE,
        },
    ),
    Case(
        "cluster default applies everywhere",
        [CLUSTER],
        pod("anywhere"),
        expect={"sampling.sampler.rate": 0.05},
        provenance={"sampling.sampler": "gatetrace-system/cluster"},
    ),
    Case(
        "namespace default beats cluster default",
        [CLUSTER, pol("edge", "ns", probabilistic(0.2))],
        pod("edge"),
        expect={"sampling.sampler.rate": 0.2},
        provenance={"sampling.sampler": "edge/ns"},
    ),
    Case(
        "another namespace's default is not the pod's",
        [CLUSTER, pol("other", "ns", {"tags": {"a": "b"}})],
        pod("edge"),
        expect={"sampling.sampler.rate": 0.05, "tags": {}},
    ),
    Case(
        "workload beats namespace default",
        [
            CLUSTER,
            pol("edge", "ns", probabilistic(0.2)),
            pol("edge", "wl", SELECT_GW | probabilistic(0.3)),
        ],
        pod("edge", **GW),
        expect={"sampling.sampler.rate": 0.3},
        provenance={"sampling.sampler": "edge/wl"},
    ),
    Case(
        "selector that does not match is ignored",
        [pol("edge", "ns", probabilistic(0.2)), pol("edge", "wl", SELECT_GW | probabilistic(0.3))],
        pod("edge", app="other"),
        expect={"sampling.sampler.rate": 0.2},
    ),
    Case(
        "selector in another namespace does not apply",
        [pol("other", "wl", SELECT_GW | probabilistic(0.3))],
        pod("edge", **GW),
        expect={"sampling.sampler.rate": 0.01},
    ),
    Case(
        "fields merge deeply across levels",
        [
            pol(
                ROOT_NS,
                "c",
                {"sampling": {"parentBased": False}, "tags": {"env": "prod", "a": "1"}},
            ),
            pol("edge", "n", {"batching": {"maxQueueSize": 4096}, "tags": {"team": "edge"}}),
            pol("edge", "w", SELECT_GW | {"batching": {"maxBatchSize": 1024}, "tags": {"a": "2"}}),
        ],
        pod("edge", **GW),
        expect={
            "sampling.parentBased": False,
            "sampling.sampler.rate": 0.01,
            "tags": {"env": "prod", "a": "2", "team": "edge"},
            "batching.maxQueueSize": 4096,
            "batching.maxBatchSize": 1024,
            "batching.flushIntervalMs": 1000,
        },
        provenance={
            "sampling.parentBased": "gatetrace-system/c",
            "tags.env": "gatetrace-system/c",
            "tags.a": "edge/w",
            "tags.team": "edge/n",
            "batching.maxQueueSize": "edge/n",
            "batching.maxBatchSize": "edge/w",
            "batching.flushIntervalMs": merge.DEFAULT_SOURCE,
        },
    ),
    Case(
        "lists replace instead of merging",
        [
            pol(
                ROOT_NS,
                "c",
                {
                    "reporters": [{"type": "memory"}, {"type": "jaegerAgent", "host": "agent"}],
                    "propagation": {"extract": ["tracecontext", "b3", "jaeger"]},
                },
            ),
            pol(
                "edge",
                "w",
                SELECT_GW
                | {
                    "reporters": [{"type": "log"}],
                    "propagation": {"extract": ["xtrace"]},
                },
            ),
        ],
        pod("edge", **GW),
        expect={
            "reporters": [{"type": "log"}],
            "propagation.extract": ["xtrace"],
            "propagation.inject": ["tracecontext", "baggage"],
        },
        provenance={"reporters": "edge/w", "propagation.extract": "edge/w"},
    ),
    Case(
        "a sampler replaces the inherited one whole",
        [
            pol(
                ROOT_NS,
                "c",
                {"sampling": {"sampler": {"type": "adaptive", "targetTracesPerSecond": 5}}},
            ),
            pol("edge", "n", {"sampling": {"sampler": {"type": "const", "decision": True}}}),
        ],
        pod("edge"),
        expect={"sampling.sampler": {"type": "const", "decision": True}},
    ),
    Case(
        "same level: the older policy wins, the newer is conflicted",
        [
            pol("edge", "zz-old", probabilistic(0.2), age=1),
            pol("edge", "aa-new", probabilistic(0.3), age=2),
        ],
        pod("edge"),
        expect={"sampling.sampler.rate": 0.2},
        conflicts={("edge/zz-old", "edge/aa-new")},
    ),
    Case(
        "same level and same age: the name decides",
        [pol("edge", "b", probabilistic(0.3)), pol("edge", "a", probabilistic(0.2))],
        pod("edge"),
        expect={"sampling.sampler.rate": 0.2},
        conflicts={("edge/a", "edge/b")},
    ),
    Case(
        "workload conflict only between selectors matching the pod",
        [
            pol("edge", "old", SELECT_GW | probabilistic(0.2), age=1),
            pol("edge", "new", SELECT_GW | probabilistic(0.3), age=2),
            pol("edge", "else", {"selector": {"matchLabels": {"app": "x"}}} | probabilistic(0.4)),
        ],
        pod("edge", **GW),
        expect={"sampling.sampler.rate": 0.2},
        conflicts={("edge/old", "edge/new")},
    ),
    Case(
        "overrides allowed: another namespace's sampling, clamped to the limits",
        [
            pol(ROOT_NS, "c", {"sampling": ALLOW}),
            pol(
                "shop",
                "s",
                {
                    "sampling": {
                        "sampler": {"type": "const", "decision": True},
                        "rules": [
                            {
                                "match": {"pathPrefix": "/a"},
                                "sampler": {"type": "rateLimiting", "tracesPerSecond": 500},
                            }
                        ],
                        "maxTracesPerSecond": 1000,
                        "namespaceOverrides": {"allowed": True, "maxRate": 1.0},
                    }
                },
            ),
        ],
        pod("edge"),
        expect={
            "namespaceOverrides.shop.sampling.sampler": {"type": "probabilistic", "rate": 0.5},
            "namespaceOverrides.shop.sampling.rules.0.sampler.tracesPerSecond": 100,
            "namespaceOverrides.shop.sampling.maxTracesPerSecond": 100,
            "sampling.sampler.rate": 0.01,
            "sampling.namespaceOverrides.maxRate": 0.5,
        },
        provenance={
            "namespaceOverrides.shop.sampling.sampler": "shop/s (clamped)",
            "sampling.namespaceOverrides.allowed": "gatetrace-system/c",
        },
        clamps={
            ("shop/s", "sampling.sampler", "clamped"),
            ("shop/s", "sampling.rules[0].sampler.tracesPerSecond", "clamped"),
            ("shop/s", "sampling.maxTracesPerSecond", "clamped"),
        },
    ),
    Case(
        "overrides within the limits are not clamped",
        [pol(ROOT_NS, "c", {"sampling": ALLOW}), pol("shop", "s", probabilistic(0.25))],
        pod("edge"),
        expect={
            "namespaceOverrides.shop.sampling.sampler.rate": 0.25,
            "namespaceOverrides.shop.sampling.maxTracesPerSecond": 100,
        },
        provenance={
            "namespaceOverrides.shop.sampling.sampler": "shop/s",
            "namespaceOverrides.shop.sampling.maxTracesPerSecond": index.LIMIT_SOURCE,
        },
    ),
    Case(
        "overrides forbidden (the default): ignored, and said so",
        [CLUSTER, pol("shop", "s", probabilistic(0.25))],
        pod("edge"),
        expect={"namespaceOverrides": {}},
        clamps={("shop/s", "sampling", "ignored")},
    ),
    Case(
        "no override for the pod's own namespace or the root namespace",
        [
            pol(
                ROOT_NS,
                "c",
                {"sampling": ALLOW | {"sampler": {"type": "probabilistic", "rate": 0.1}}},
            ),
            pol("edge", "n", probabilistic(0.2)),
        ],
        pod("edge"),
        expect={"namespaceOverrides": {}, "sampling.sampler.rate": 0.2},
    ),
    Case(
        "a namespace default without sampling overrides nothing",
        [pol(ROOT_NS, "c", {"sampling": ALLOW}), pol("shop", "s", {"tags": {"a": "b"}})],
        pod("edge"),
        expect={"namespaceOverrides": {}, "tags": {}},
    ),
    Case(
        "a selector policy in another namespace is no override",
        [pol(ROOT_NS, "c", {"sampling": ALLOW}), pol("shop", "s", SELECT_GW | probabilistic(0.2))],
        pod("edge"),
        expect={"namespaceOverrides": {}},
    ),
    Case(
        "override conflicts are reported too",
        [
            pol(ROOT_NS, "c", {"sampling": ALLOW}),
            pol("shop", "old", probabilistic(0.2), age=1),
            pol("shop", "new", probabilistic(0.3), age=2),
        ],
        pod("edge"),
        expect={"namespaceOverrides.shop.sampling.sampler.rate": 0.2},
        conflicts={("shop/old", "shop/new")},
    ),
    Case(
        "the gateway's own limits come from its most specific policy",
        [
            pol(ROOT_NS, "c", {"sampling": ALLOW}),
            pol("edge", "w", SELECT_GW | {"sampling": {"namespaceOverrides": {"allowed": False}}}),
            pol("shop", "s", probabilistic(0.2)),
        ],
        pod("edge", **GW),
        expect={"namespaceOverrides": {}, "sampling.namespaceOverrides.maxRate": 0.5},
        clamps={("shop/s", "sampling", "ignored")},
    ),
    Case(
        "a selector policy in the root namespace is a workload there",
        [CLUSTER, pol(ROOT_NS, "w", SELECT_GW | probabilistic(0.7))],
        pod(ROOT_NS, **GW),
        expect={"sampling.sampler.rate": 0.7},
        provenance={"sampling.sampler": "gatetrace-system/w"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_precedence(case: Case) -> None:
    result = index.compute_effective(case.policies, root_namespace=ROOT_NS, pod=case.pod)
    wire = effective.wire_config(result.config)
    for path, value in case.expect.items():
        assert at(wire, path) == value, path
    for path, source in case.provenance.items():
        assert result.provenance[path] == source, path
    assert {(c.winner, c.loser) for c in result.conflicts} == case.conflicts
    assert {(c.policy, c.path, c.action) for c in result.clamps} == case.clamps
    assert result.version == effective.config_version(result.config)
    # Every leaf of the config is explained, and only leaves of the config.
    assert all(result.provenance[p] for p in result.provenance)


def test_sources_list_the_winners_in_precedence_order() -> None:
    policies = [
        pol(ROOT_NS, "c", {"sampling": ALLOW}, generation=3),
        pol("edge", "n", {}),
        pol("edge", "w", SELECT_GW),
        pol("shop", "s", probabilistic(0.2), generation=7),
    ]
    result = index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge", **GW))
    assert [(s.key, s.level, s.generation) for s in result.sources] == [
        ("gatetrace-system/c", "cluster", 3),
        ("edge/n", "namespace", 1),
        ("edge/w", "workload", 1),
        ("shop/s", "override", 7),
    ]


def test_deleting_the_winner_reverts_to_the_remaining_policies() -> None:
    idx = index.PolicyIndex(ROOT_NS)
    idx.upsert_pod(pod("edge", **GW))
    idx.upsert_policy(CLUSTER)
    idx.upsert_policy(pol("edge", "old", probabilistic(0.2), age=1))
    idx.upsert_policy(pol("edge", "new", probabilistic(0.3), age=2))
    first = idx.effective("edge", "gw-0")
    assert at(effective.wire_config(first.config), "sampling.sampler.rate") == 0.2
    assert idx.delete_policy("edge", "old") == {("edge", "gw-0")}
    second = idx.effective("edge", "gw-0")
    assert at(effective.wire_config(second.config), "sampling.sampler.rate") == 0.3
    assert second.conflicts == ()
    idx.delete_policy("edge", "new")
    idx.delete_policy(ROOT_NS, "cluster")
    last = idx.effective("edge", "gw-0")
    assert last.config == model.TracingConfig()
    assert last.sources == ()


def test_valid_policies_that_clash_when_merged_fail_with_field_paths() -> None:
    policies = [
        pol(ROOT_NS, "c", {"batching": {"maxQueueSize": 1000}}),
        pol("edge", "w", SELECT_GW | {"batching": {"maxBatchSize": 5000}}),
    ]
    with pytest.raises(errors.MergeFailed) as caught:
        index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge", **GW))
    assert [(e.loc, e.msg) for e in caught.value.errors] == [
        ("batching", "maxBatchSize 5000 is above maxQueueSize 1000")
    ]
    assert "gatetrace-system/c" in caught.value.subject
    # Other pods are unaffected.
    fine = index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge", app="x"))
    assert fine.config.batching.max_queue_size == 1000


def test_equal_content_from_different_policies_has_equal_version() -> None:
    a = index.compute_effective(
        [pol(ROOT_NS, "a", probabilistic(0.2))], root_namespace=ROOT_NS, pod=pod("x")
    )
    b = index.compute_effective(
        [pol("x", "b", probabilistic(0.2))], root_namespace=ROOT_NS, pod=pod("x")
    )
    assert a.provenance != b.provenance
    assert a.version == b.version


def test_sampling_for_a_routed_namespace() -> None:
    policies = [
        pol(ROOT_NS, "c", {"sampling": ALLOW | {"parentBased": False}}),
        pol("shop", "s", probabilistic(0.9)),
    ]
    result = index.compute_effective(policies, root_namespace=ROOT_NS, pod=pod("edge"))
    shop = effective.sampling_for_namespace(result.config, "shop")
    assert shop.sampler == sampling_models.ProbabilisticSampler(rate=0.5)
    assert shop.parent_based is False
    assert shop.max_traces_per_second == 100
    assert effective.sampling_for_namespace(result.config, "elsewhere") == result.config.sampling
