"""Effective configs for 500 gateway pods across 50 namespaces from 1,000 policies.

Goals (DESIGN/issue 4): a full computation under 1 s, and the recomputation
after one policy changes under 50 ms.  The peer measured in the same run is
the full recomputation from scratch (a fresh :class:`PolicyIndex`), so the
printed ratio says what the incremental path saves.  Three kinds of change
are timed, from the cheapest to the widest: a workload policy (pods of one
deployment), a namespace default that overrides sampling (every pod, through
``namespaceOverrides``), and the cluster default (every pod).  Run:
``.venv/bin/python benchmarks/bench_policy.py``.
"""

import datetime
import time
from collections.abc import Callable
from typing import Any

from gatetrace.policy import effective, index, model

ROOT = "gatetrace-system"
NAMESPACES = [f"team-{i:02d}" for i in range(49)] + [ROOT]
PODS_PER_NAMESPACE = 10
POLICIES_PER_NAMESPACE = 20
FULL_GOAL_S = 1.0
INCREMENTAL_GOAL_MS = 50.0
T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def _spec(raw: dict[str, Any]) -> model.TracingPolicySpec:
    return model.TracingPolicySpec.model_validate(raw)


def _policy(
    ns: str, name: str, raw: dict[str, Any], age: int, gen: int = 1
) -> effective.PolicySource:
    stamp = T0 + datetime.timedelta(seconds=age)
    return effective.PolicySource(ns, name, _spec(raw), gen, stamp)


def workload_spec(n: int, app: str, rate: float) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {"app": app}},
        "sampling": {"sampler": {"type": "probabilistic", "rate": rate}},
        "tags": {"policy": f"w{n}"},
        "headerTags": [{"header": "x-request-id", "tag": "http.request_id"}],
    }


def cluster_spec(rate: float) -> dict[str, Any]:
    return {
        "sampling": {
            "sampler": {"type": "probabilistic", "rate": rate},
            "namespaceOverrides": {"allowed": True, "maxRate": 0.5, "maxTracesPerSecond": 100},
        },
        "reporters": [{"type": "memory"}, {"type": "jaegerAgent", "host": "agent", "port": 6831}],
        "tags": {"deployment.environment": "prod"},
    }


def namespace_spec(i: int, rate: float) -> dict[str, Any]:
    spec: dict[str, Any] = {"batching": {"flushIntervalMs": 500 + i}}
    if i % 2 == 0:  # every other namespace overrides sampling of its traffic
        spec["sampling"] = {"sampler": {"type": "probabilistic", "rate": rate}}
    return spec


def build_policies() -> list[effective.PolicySource]:
    """1 cluster default + per namespace 1 default and 19 workload policies = 1,000."""
    policies = [_policy(ROOT, "cluster-default", cluster_spec(0.01), 0)]
    for i, ns in enumerate(NAMESPACES):
        per_ns = POLICIES_PER_NAMESPACE
        if ns != ROOT:
            policies.append(_policy(ns, "default", namespace_spec(i, 0.2), 1))
            per_ns -= 1
        else:
            per_ns -= 1  # the cluster default is the root namespace's selector-less policy
        for j in range(per_ns):
            # gw-a and gw-b are the gateway deployments; j=2 also selects gw-a
            # (older loses nothing: it is a conflict); the rest select other apps.
            app = ["gw-a", "gw-b", "gw-a"][j] if j < 3 else f"app-{j}"
            policies.append(
                _policy(ns, f"wl-{j:02d}", workload_spec(j, app, 0.05 + j / 100), 2 + j)
            )
    return policies


def build_pods() -> list[effective.GatewayPod]:
    pods = []
    for ns in NAMESPACES:
        for k in range(PODS_PER_NAMESPACE):
            app = "gw-a" if k < PODS_PER_NAMESPACE // 2 else "gw-b"
            labels = {"app": app, "pod-template-hash": f"h{k % 2}"}
            pods.append(effective.GatewayPod(ns, f"{app}-{k}", labels))
    return pods


def full(
    policies: list[effective.PolicySource], pods: list[effective.GatewayPod]
) -> index.PolicyIndex:
    idx = index.PolicyIndex(ROOT)
    for policy in policies:
        idx.upsert_policy(policy)
    for pod in pods:
        idx.upsert_pod(pod)
    results = idx.effective_all()
    assert len(results) == len(pods)
    assert all(isinstance(r, effective.EffectiveConfig) for r in results.values())
    return idx


def incremental(idx: index.PolicyIndex, change: effective.PolicySource) -> int:
    affected = idx.upsert_policy(change)
    for key in affected:
        idx.effective(*key)
    return len(affected)


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _time_change(
    idx: index.PolicyIndex, make: Callable[[int], effective.PolicySource], repeat: int
) -> tuple[float, int]:
    counter = iter(range(2, 10_000))
    touched = 0

    def step() -> None:
        nonlocal touched
        touched = incremental(idx, make(next(counter)))

    return _best(step, repeat), touched


def measure(repeat: int = 5) -> dict[str, Any]:
    """Timings in seconds, plus how many pods each change touched."""
    raw = [
        {
            "apiVersion": model.API_VERSION,
            "kind": model.KIND,
            "metadata": {"name": p.name, "namespace": p.namespace},
            "spec": p.spec.model_dump(mode="json", exclude_unset=True),
        }
        for p in build_policies()
    ]
    parse = _best(lambda: [model.TracingPolicy.model_validate(d) for d in raw], repeat)
    policies, pods = build_policies(), build_pods()
    full_s = _best(lambda: full(policies, pods), repeat)
    idx = full(policies, pods)
    changes = {
        "workload policy": lambda n: _policy(
            "team-07", "wl-00", workload_spec(0, "gw-a", 0.3 + n / 1000), 2, n
        ),
        "namespace default": lambda n: _policy(
            "team-08", "default", namespace_spec(8, 0.1 + n / 1000), 1, n
        ),
        "cluster default": lambda n: _policy(
            ROOT, "cluster-default", cluster_spec(0.01 + n / 1000), 0, n
        ),
    }
    out: dict[str, Any] = {
        "parse": parse,
        "full": full_s,
        "pods": len(pods),
        "policies": len(policies),
    }
    for label, make in changes.items():
        out[label] = _time_change(idx, make, repeat)
    return out


def main() -> None:
    figures = measure()
    full_s = figures["full"]
    print(
        f"effective configs: {figures['pods']} pods, {len(NAMESPACES)} namespaces, "
        f"{figures['policies']} policies"
    )
    print(f"  validate 1,000 TracingPolicy documents  {figures['parse'] * 1e3:8.1f} ms")
    verdict = "ok" if full_s < FULL_GOAL_S else "MISSED"
    print(
        f"  full computation (fresh index, peer)     {full_s * 1e3:8.1f} ms"
        f"  (goal < 1000 ms: {verdict})"
    )
    for label in ("workload policy", "namespace default", "cluster default"):
        seconds, touched = figures[label]
        verdict = "ok" if seconds * 1e3 < INCREMENTAL_GOAL_MS else "MISSED"
        print(
            f"  one {label:<18} changed: {seconds * 1e3:8.2f} ms for {touched:3d} pods, "
            f"ratio to full {seconds / full_s:6.3f}  (goal < 50 ms: {verdict})"
        )


if __name__ == "__main__":
    main()
