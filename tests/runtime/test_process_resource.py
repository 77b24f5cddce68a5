"""The process's resource attributes: OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME rules
(OpenTelemetry resource SDK and environment variable specifications) and the service and
Kubernetes conventions for what is detected."""

import os
import uuid

import pytest

from gatetrace.runtime import process_resource

_K8S = (
    "k8s.pod.name=gw-7d9f-abcde,k8s.pod.uid=0f3c2b1a-1111-2222-3333-444455556666,"
    "k8s.namespace.name=edge,k8s.node.name=node-1,k8s.deployment.name=gw,"
    "k8s.container.name=gateway"
)


def test_pairs_are_split_on_commas_trimmed_and_percent_decoded() -> None:
    parsed = process_resource.parse_resource_attributes(" a = 1 ,b=x%2Cy%3Dz, c=%E2%9C%93 ,, d= ")
    assert parsed == {"a": "1", "b": "x,y=z", "c": "\u2713", "d": ""}


def test_an_entry_without_equals_is_named_in_the_error() -> None:
    with pytest.raises(
        ValueError, match=r"OTEL_RESOURCE_ATTRIBUTES: entry 2 \('oops'\) has no '='"
    ):
        process_resource.parse_resource_attributes("a=1,oops")


def test_an_empty_key_and_a_key_with_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match=r"entry 1.*empty key"):
        process_resource.parse_resource_attributes("=1")
    with pytest.raises(ValueError, match="printable ASCII without spaces"):
        process_resource.parse_resource_attributes("a b=1")


def test_a_value_that_is_not_utf8_after_decoding_is_refused() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        process_resource.parse_resource_attributes("a=%FF")


def test_the_number_of_attributes_is_bounded() -> None:
    text = ",".join(f"k{i}=v" for i in range(200))
    with pytest.raises(ValueError, match="more than 128 attributes"):
        process_resource.parse_resource_attributes(text)


def test_kubernetes_attributes_from_the_environment_are_kept_with_a_stable_instance_id() -> None:
    first = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": _K8S}, default_service="gatetrace-gateway", component="gateway"
    )
    again = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": _K8S}, default_service="gatetrace-gateway", component="gateway"
    )
    assert first.problems == ()
    for key in ("k8s.pod.name", "k8s.pod.uid", "k8s.namespace.name", "k8s.node.name"):
        assert first.get(key) is not None, key
    assert first.get("k8s.deployment.name") == "gw"
    # the service conventions' UUID v5 of <namespace>.<pod>.<container>: the same pod
    # restarted keeps its instance id, two replicas differ
    instance = first.get("service.instance.id")
    assert instance == again.get("service.instance.id")
    parsed = uuid.UUID(str(instance))
    assert parsed.version == 5
    other = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": _K8S.replace("gw-7d9f-abcde", "gw-7d9f-fghij")},
        default_service="gatetrace-gateway",
        component="gateway",
    )
    assert other.get("service.instance.id") != instance


def test_outside_kubernetes_the_process_fills_what_it_knows() -> None:
    res = process_resource.detect(
        {}, default_service="svc", component="service", service_version="1.2.3", sdk_version="9.9"
    )
    assert res.service_name == "svc"
    assert uuid.UUID(str(res.get("service.instance.id"))).version == 4
    assert res.get("telemetry.sdk.name") == "gatetrace"
    assert res.get("telemetry.sdk.language") == "python"
    assert res.get("telemetry.sdk.version") == "9.9"
    assert res.get("service.version") == "1.2.3"
    assert res.get("gatetrace.component") == "service"
    assert res.get("process.pid") == os.getpid()
    assert res.get("host.name")
    assert res.get("k8s.pod.name") is None
    keys = [key for key, _ in res.attributes]
    assert keys == sorted(keys)
    assert "service.name" not in keys


def test_service_name_precedence() -> None:
    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}
    assert (
        process_resource.detect(env, default_service="d", component="g").service_name == "from-env"
    )
    del env["OTEL_SERVICE_NAME"]
    assert (
        process_resource.detect(env, default_service="d", component="g").service_name
        == "from-attrs"
    )
    # a name set in the process's own config wins over the environment
    explicit = process_resource.detect(
        {"OTEL_SERVICE_NAME": "from-env"},
        default_service="cfg",
        component="g",
        explicit_service=True,
    )
    assert explicit.service_name == "cfg"


def test_given_attributes_win_over_detected_ones() -> None:
    res = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": "host.name=pinned,service.instance.id=i-1,service.version=2"},
        default_service="d",
        component="g",
        service_version="1",
    )
    assert res.get("host.name") == "pinned"
    assert res.get("service.instance.id") == "i-1"
    assert res.get("service.version") == "2"


def test_a_malformed_variable_is_discarded_whole_and_reported() -> None:
    res = process_resource.detect(
        {"OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=p,broken"}, default_service="d", component="g"
    )
    assert res.get("k8s.pod.name") is None
    assert len(res.problems) == 1
    assert "OTEL_RESOURCE_ATTRIBUTES: entry 2 ('broken')" in res.problems[0]
    assert "ignored" in res.problems[0]
