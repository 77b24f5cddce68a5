"""Gateway-wide traces/s budgets split among a gateway's pods (``rateScope: gateway``),
on plans made by the real planner from real policy documents."""

from typing import Any

import pytest

from gatetrace.operator import planner, pods, shares
from gatetrace.policy import model
from tests.operator import policydocs


def _pod(name: str, gateway: str, *, ready: bool = True) -> pods.GatewayTarget:
    return pods.GatewayTarget(
        "edge", name, gateway, {pods.GATEWAY_LABEL: gateway}, "127.0.0.9", ready=ready
    )


CLUSTER = {
    "sampling": {
        "rateScope": "gateway",
        "sampler": {"type": "rateLimiting", "tracesPerSecond": 30},
        "rules": [
            {
                "match": {"pathPrefix": "/api/search"},
                "sampler": {"type": "adaptive", "targetTracesPerSecond": 9},
            },
            {
                "match": {"pathPrefix": "/api/ops"},
                "sampler": {
                    "type": "perOperation",
                    "defaultRate": 0.1,
                    "lowerBoundTracesPerSecond": 0,
                },
            },
        ],
        "prioritize": {"errors": True, "maxPerSecond": 3},
        "maxTracesPerSecond": 100,
        "namespaceOverrides": {"allowed": True, "maxRate": 0.5, "maxTracesPerSecond": 12},
    },
    "batching": {"maxQueueSize": 3000},
}
SHOP = {"sampling": {"sampler": {"type": "rateLimiting", "tracesPerSecond": 6}}}


def _plans(cluster: dict[str, Any], pod_list: list[pods.GatewayTarget]) -> dict[str, Any]:
    policies = [
        policydocs.record("gatetrace-system", "cluster", cluster),
        policydocs.record("shop", "shop-sampling", SHOP),
    ]
    return planner.IndexPlanner("gatetrace-system")(policies, pod_list)


def test_each_ready_pod_of_a_gateway_gets_an_equal_share_of_every_rate() -> None:
    pod_list = [_pod("a-0", "a"), _pod("a-1", "a"), _pod("a-2", "a", ready=False), _pod("b-0", "b")]
    plans = _plans(CLUSTER, pod_list)
    shared = shares.share_rates(plans)
    a0 = shared["edge/a-0"].config
    sampling = a0["sampling"]
    assert sampling["sampler"]["tracesPerSecond"] == 15  # 30 among a-0 and a-1
    assert sampling["rules"][0]["sampler"]["targetTracesPerSecond"] == 4.5
    assert sampling["rules"][1]["sampler"]["lowerBoundTracesPerSecond"] == 0
    assert sampling["rules"][1]["sampler"]["defaultRate"] == 0.1  # a probability: unchanged
    assert sampling["prioritize"]["maxPerSecond"] == 1.5
    assert sampling["maxTracesPerSecond"] == 50
    assert sampling["namespaceOverrides"]["maxTracesPerSecond"] == 6
    assert a0["namespaceOverrides"]["shop"]["sampling"]["sampler"]["tracesPerSecond"] == 3
    assert a0["batching"] == plans["edge/a-0"].config["batching"]  # not a rate: untouched
    # the pod that is not Ready yet gets the same share (it is the ConfigMap's config)
    assert shared["edge/a-2"].config == a0
    assert shared["edge/a-2"].version == shared["edge/a-0"].version
    # gateway b has one pod: the whole budget, but still its own version
    b0 = shared["edge/b-0"]
    assert b0.config["sampling"]["sampler"]["tracesPerSecond"] == 30
    assert b0.version == f"{plans['edge/b-0'].version}/1"
    assert shared["edge/a-0"].version == f"{plans['edge/a-0'].version}/2"
    # what is pushed must still be a valid config for the gateway
    model.TracingConfig.model_validate(a0)
    # the planner's own plans are left as they were
    assert plans["edge/a-0"].config["sampling"]["sampler"]["tracesPerSecond"] == 30


def test_a_change_of_pod_count_is_a_new_version() -> None:
    two = shares.share_rates(_plans(CLUSTER, [_pod("a-0", "a"), _pod("a-1", "a")]))
    three = shares.share_rates(
        _plans(CLUSTER, [_pod("a-0", "a"), _pod("a-1", "a"), _pod("a-2", "a")])
    )
    assert two["edge/a-0"].version != three["edge/a-0"].version
    assert three["edge/a-0"].config["sampling"]["sampler"]["tracesPerSecond"] == 10


def test_tiny_shares_stay_positive_and_rounded() -> None:
    cluster = {
        "sampling": {
            "rateScope": "gateway",
            "sampler": {"type": "rateLimiting", "tracesPerSecond": 1e-6},
            "maxTracesPerSecond": 10,
        }
    }
    pod_list = [_pod(f"a-{i}", "a") for i in range(3)]
    config = shares.share_rates(_plans(cluster, pod_list))["edge/a-0"].config
    assert config["sampling"]["sampler"]["tracesPerSecond"] == 1e-6  # never 0: > 0 required
    assert config["sampling"]["maxTracesPerSecond"] == 3.333333
    model.TracingConfig.model_validate(config)


@pytest.mark.parametrize("scope", [None, "pod"])
def test_per_pod_scope_leaves_the_plans_alone(scope: str | None) -> None:
    cluster: dict[str, Any] = {
        "sampling": {"sampler": {"type": "rateLimiting", "tracesPerSecond": 30}}
    }
    if scope is not None:
        cluster["sampling"]["rateScope"] = scope
    plans = _plans(cluster, [_pod("a-0", "a"), _pod("a-1", "a")])
    shared = shares.share_rates(plans)
    assert all(shared[key] is plans[key] for key in plans)


def test_failed_plans_pass_through() -> None:
    policies = [
        policydocs.record("gatetrace-system", "cluster", CLUSTER),  # maxQueueSize 3000
        policydocs.record("edge", "edge-default", {"batching": {"maxBatchSize": 4000}}),
    ]
    plans = planner.IndexPlanner("gatetrace-system")(policies, [_pod("a-0", "a")])
    assert plans["edge/a-0"].error  # valid alone, not together
    assert shares.share_rates(plans)["edge/a-0"] is plans["edge/a-0"]
