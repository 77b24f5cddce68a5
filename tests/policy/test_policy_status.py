"""The status model: standard conditions, per-pod state, clamps; the CRD accepts it."""

import datetime

import pytest
from crd_checker import crd_problems

from gatetrace.policy import crd, errors, model, status

NOW = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


def _status() -> status.TracingPolicyStatus:
    return status.TracingPolicyStatus(
        observed_generation=3,
        conditions=[
            status.Condition(
                type=t,
                status="True",
                reason="Done",
                last_transition_time=NOW,
                observed_generation=3,
            )
            for t in status.CONDITION_TYPES
        ],
        target_pods=2,
        applied_pods=1,
        pods=[
            status.PodStatus(
                name="gw-1", namespace="edge", revision=4, version="sha256:ab", state="Applied"
            ),
            status.PodStatus(name="gw-2", namespace="edge", state="Failed", message="timeout"),
        ],
        clamps=[
            status.ClampStatus(
                gateway="edge/gw-1",
                path="sampling.sampler.rate",
                action="clamped",
                requested="0.8",
                applied="0.5",
            )
        ],
    )


def test_status_round_trips_through_the_api_servers_json() -> None:
    policy = model.TracingPolicy(
        metadata=model.ObjectMeta(name="p", namespace="edge"), status=_status()
    )
    wire = policy.model_dump(mode="json", exclude_none=True)
    cond = wire["status"]["conditions"][0]
    assert cond["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert wire["status"]["appliedPods"] == 1
    assert model.TracingPolicy.model_validate(wire) == policy
    assert crd_problems(crd.build_crd(), wire) == []


def test_status_condition_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="status"):
        status.Condition.model_validate(
            {
                "type": "Applied",
                "status": "yes",
                "reason": "X",
                "lastTransitionTime": NOW.isoformat(),
            }
        )


def test_metadata_from_the_api_server_is_kept() -> None:
    raw = {
        "apiVersion": "gatetrace.dev/v1alpha1",
        "kind": "TracingPolicy",
        "metadata": {
            "name": "p",
            "namespace": "edge",
            "generation": 2,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "uid": "1234",
            "resourceVersion": "99",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {},
    }
    policy = model.TracingPolicy.model_validate(raw)
    assert policy.metadata.creation_timestamp == datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    assert policy.model_dump(mode="json", exclude_unset=True)["metadata"]["uid"] == "1234"


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        (("spec", "reporters", 1, "endpoint"), "spec.reporters[1].endpoint"),
        (("spec", "tags", "deployment.environment"), 'spec.tags["deployment.environment"]'),
        ((), ""),
    ],
)
def test_field_paths_read_like_the_yaml(loc: tuple[int | str, ...], text: str) -> None:
    assert errors.format_loc(loc) == text
