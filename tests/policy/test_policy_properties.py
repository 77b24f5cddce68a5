"""Properties of the merge: deterministic, order-independent, incremental == fresh,
and the version changes exactly when the content does."""

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_builders import ROOT_NS, pod, pol

from gatetrace.policy import effective, errors, index, model
from gatetrace.policy import sampling as sampling_models

NAMESPACES = [ROOT_NS, "edge", "shop"]
PODS = [
    pod("edge", "gw-0", app="gw"),
    pod("edge", "gw-1", app="other"),
    pod("shop", "gw-2", app="gw"),
    pod(ROOT_NS, "gw-3", app="gw"),
]

samplers = st.sampled_from(
    [
        {"type": "probabilistic", "rate": 0.3},
        {"type": "probabilistic", "rate": 0.9},
        {"type": "const", "decision": True},
        {"type": "rateLimiting", "tracesPerSecond": 200},
        {"type": "adaptive", "targetTracesPerSecond": 50, "maxRate": 0.8},
    ]
)
limits = st.fixed_dictionaries(
    {"allowed": st.booleans()},
    optional={
        "maxRate": st.sampled_from([0.1, 0.5, 1.0]),
        "maxTracesPerSecond": st.sampled_from([10, 100]),
    },
)
sampling = st.fixed_dictionaries(
    {},
    optional={
        "sampler": samplers,
        "parentBased": st.booleans(),
        "maxTracesPerSecond": st.sampled_from([50, 500]),
        "namespaceOverrides": limits,
    },
)
reporters = st.lists(
    st.sampled_from(
        [
            {"type": "memory"},
            {"type": "log"},
            {"type": "jaegerAgent", "host": "agent"},
            {"type": "zipkin", "endpoint": "http://zipkin:9411/api/v2/spans"},
        ]
    ),
    unique_by=lambda r: r["type"],
    max_size=3,
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "selector": st.sampled_from(
            [{"matchLabels": {"app": "gw"}}, {"matchLabels": {"app": "other"}}]
        ),
        "sampling": sampling,
        "tags": st.dictionaries(
            st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"]), max_size=2
        ),
        "reporters": reporters,
        "batching": st.fixed_dictionaries(
            {},
            optional={
                "maxQueueSize": st.sampled_from([1000, 4096]),
                "flushIntervalMs": st.sampled_from([100, 5000]),
            },
        ),
        "propagation": st.fixed_dictionaries(
            {"extract": st.sampled_from([["b3"], ["tracecontext", "jaeger"]])}
        ),
    },
)
policy_sets = st.dictionaries(
    st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(["p1", "p2", "p3"])),
    st.tuples(specs, st.integers(0, 2), st.integers(1, 3)),
    max_size=7,
).map(
    lambda d: [
        pol(ns, name, spec, age=age, generation=gen) for (ns, name), (spec, age, gen) in d.items()
    ]
)


def _view(result: effective.EffectiveConfig | errors.MergeFailed) -> Any:
    if isinstance(result, errors.MergeFailed):
        return ("failed", result.errors)
    return (
        result.version,
        effective.wire_config(result.config),
        dict(result.provenance),
        sorted(result.sources, key=repr),
        sorted(result.conflicts, key=repr),
        sorted(result.clamps, key=repr),
    )


def _all(policies: list[effective.PolicySource]) -> dict[effective.PodKey, Any]:
    results = index.compute_all(policies, root_namespace=ROOT_NS, pods=PODS)
    return {k: _view(v) for k, v in results.items()}


@settings(max_examples=60, deadline=None)
@given(policy_sets, st.randoms(use_true_random=False))
def test_merge_is_deterministic_and_independent_of_input_order(
    policies: list[effective.PolicySource], rnd: random.Random
) -> None:
    first = _all(policies)
    shuffled = list(policies)
    rnd.shuffle(shuffled)
    assert _all(shuffled) == first
    assert _all(policies) == first


@settings(max_examples=40, deadline=None)
@given(
    policy_sets,
    st.lists(st.tuples(st.booleans(), st.integers(0, 6), specs, st.integers(0, 2)), max_size=6),
)
def test_incremental_updates_equal_a_fresh_computation(
    policies: list[effective.PolicySource], steps: list[tuple[bool, int, dict[str, Any], int]]
) -> None:
    idx = index.PolicyIndex(ROOT_NS)
    for p in PODS:
        idx.upsert_pod(p)
    current = {p.key: p for p in policies}
    for p in policies:
        idx.upsert_policy(p)
    before = {k: _view(v) for k, v in idx.effective_all().items()}
    for delete, which, spec, age in steps:
        keys = sorted(current)
        if delete and keys:
            key = keys[which % len(keys)]
            ns, name = key.split("/")
            affected = idx.delete_policy(ns, name)
            del current[key]
        else:
            ns = NAMESPACES[which % len(NAMESPACES)]
            new = pol(ns, f"p{which % 4}", spec, age=age)
            affected = idx.upsert_policy(new)
            current[new.key] = new
        after = {k: _view(v) for k, v in idx.effective_all().items()}
        assert after == _all(list(current.values()))
        changed = {k for k in after if after[k] != before[k]}
        assert changed <= affected, "a pod changed that the index did not report"
        before = after


configs = policy_sets.map(
    lambda ps: [
        r
        for r in index.compute_all(ps, root_namespace=ROOT_NS, pods=PODS).values()
        if isinstance(r, effective.EffectiveConfig)
    ]
)


@settings(max_examples=60, deadline=None)
@given(configs, configs)
def test_version_changes_iff_content_changes(
    left: list[effective.EffectiveConfig], right: list[effective.EffectiveConfig]
) -> None:
    for a in left:
        for b in right:
            same = effective.wire_config(a.config) == effective.wire_config(b.config)
            assert (a.version == b.version) == same
        reparsed = model.TracingConfig.model_validate(effective.wire_config(a.config))
        assert effective.config_version(reparsed) == a.version


@given(configs, st.sampled_from(["tags", "rate", "override", "queue"]))
def test_any_single_change_changes_the_version(
    results: list[effective.EffectiveConfig], what: str
) -> None:
    for result in results:
        wire = effective.wire_config(result.config)
        if what == "tags":
            wire["tags"] = {**wire["tags"], "changed": "yes"}
        elif what == "rate":
            wire["sampling"]["sampler"] = {"type": "probabilistic", "rate": 0.123}
            if result.config.sampling.sampler == sampling_models.ProbabilisticSampler(rate=0.123):
                continue
        elif what == "override":
            wire["namespaceOverrides"]["elsewhere"] = {"sampling": {"parentBased": False}}
        else:
            wire["batching"]["maxQueueSize"] += 1
        changed = model.TracingConfig.model_validate(wire)
        assert effective.config_version(changed) != result.version
