"""Status conditions, per-pod entries and events from the reconciler's state."""

from gatetrace.operator import conditions, core, plan, pods, records

REF = plan.PolicyRef("edge", "p")


def _record(valid: bool = True) -> core.PolicyRecord:
    spec = {"tags": {"a": "b"}} if valid else {"sampling": {"sampler": {"type": "nope"}}}
    return records.record_from_object(
        {
            "apiVersion": "gatetrace.dev/v1alpha1",
            "kind": "TracingPolicy",
            "metadata": {"name": "p", "namespace": "edge", "generation": 3},
            "spec": spec,
        }
    )


def _plan(name: str, **kw: object) -> plan.PodPlan:
    pod = pods.GatewayTarget("edge", name, "api", {}, "127.0.0.2", ready=True)
    return plan.PodPlan(pod, {}, "v1", sources=(REF,), **kw)  # type: ignore[arg-type]


def _by_type(status: dict[str, object]) -> dict[str, dict[str, str]]:
    return {c["type"]: c for c in status["conditions"]}  # type: ignore[attr-defined,index]


def test_all_applied() -> None:
    plans = {f"edge/gw{i}": _plan(f"gw{i}") for i in range(3)}
    states = {k: core.PodState(5, "v1", "Applied", "") for k in plans}
    status, events = conditions.policy_status(_record(), plans, states, previous={}, now=0)
    c = _by_type(status)
    assert status["observedGeneration"] == 3
    assert (status["targetPods"], status["appliedPods"]) == (3, 3)
    assert c["Applied"]["status"] == "True"
    assert c["Applied"]["message"] == "3/3 pods at revision 5"
    assert c["Degraded"]["status"] == "False" and c["Conflicted"]["status"] == "False"
    assert ("Normal", "Applied", "3/3 pods at revision 5") in events


def test_failed_pod_is_degraded_with_its_name() -> None:
    plans = {"edge/a": _plan("a"), "edge/b": _plan("b")}
    states = {
        "edge/a": core.PodState(5, "v1", "Applied", ""),
        "edge/b": core.PodState(5, "v1", "Failed", "Unreachable: connection refused"),
    }
    status, events = conditions.policy_status(_record(), plans, states, previous={}, now=0)
    c = _by_type(status)
    assert c["Applied"]["status"] == "False" and c["Applied"]["message"] == "1/2 pods applied"
    assert c["Degraded"]["status"] == "True"
    assert "edge/b: Unreachable" in c["Degraded"]["message"]
    assert any(e[1] == "PushFailed" for e in events)


def test_conflict_names_the_winner() -> None:
    winner = plan.PolicyRef("edge", "older")
    pod = pods.GatewayTarget("edge", "a", "api", {}, "127.0.0.2", ready=True)
    plans = {"edge/a": plan.PodPlan(pod, {}, "v", sources=(winner,), conflicts=((REF, winner),))}
    status, events = conditions.policy_status(_record(), plans, {}, previous={}, now=0)
    c = _by_type(status)
    assert c["Conflicted"]["status"] == "True"
    assert "edge/older wins for edge/a" in c["Conflicted"]["message"]
    assert c["Applied"]["reason"] == "NoTargets"
    assert any(e[1] == "Conflicted" for e in events)


def test_invalid_policy_is_not_accepted() -> None:
    status, events = conditions.policy_status(_record(valid=False), {}, {}, previous={}, now=0)
    c = _by_type(status)
    assert c["Accepted"]["status"] == "False" and c["Accepted"]["reason"] == "Invalid"
    assert "spec.sampling.sampler" in c["Accepted"]["message"]
    assert events and events[0][1] == "Invalid"


def test_transition_time_kept_while_status_is_unchanged_and_no_repeated_events() -> None:
    plans = {"edge/a": _plan("a")}
    states = {"edge/a": core.PodState(5, "v1", "Applied", "")}
    first, _ = conditions.policy_status(_record(), plans, states, previous={}, now=1000)
    second, events = conditions.policy_status(_record(), plans, states, previous=first, now=2000)
    assert _by_type(second)["Applied"]["lastTransitionTime"] == "1970-01-01T00:16:40Z"
    assert events == []
    assert conditions.without_times(first) == conditions.without_times(second)


def test_the_status_is_the_policy_status_model_in_wire_form() -> None:
    from gatetrace.policy import status as status_model

    plans = {f"edge/gw{i}": _plan(f"gw{i}") for i in range(2)}
    states = {"edge/gw0": core.PodState(5, "v1", "Failed", "x" * 40_000)}
    status, _ = conditions.policy_status(_record(), plans, states, previous={}, now=1_700_000_000)
    typed = status_model.TracingPolicyStatus.model_validate(status)
    assert typed.model_dump(mode="json", by_alias=True, exclude_none=True).keys() == status.keys()
    assert status["pods"][0]["message"] == "x" * 4000
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {"2023-11-14T22:13:20Z"}
    degraded = _by_type(status)["Degraded"]
    assert len(degraded["message"]) <= 32_768 and degraded["message"].endswith("...")


def test_a_status_field_outside_the_model_is_refused() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="appliedPod"):
        conditions._typed({"observedGeneration": 1, "appliedPod": 2, "conditions": []})
