"""Which pods are gateway pods and how their admin endpoint is found."""

from typing import Any

from gatetrace.operator import pods


def _pod(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "gw-1",
            "namespace": "edge",
            "uid": "u1",
            "labels": {pods.GATEWAY_LABEL: "api", "app": "api"},
        },
        "spec": {
            "containers": [{"name": "gw", "ports": [{"name": "http", "containerPort": 8080}]}]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.1.2.3",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    for key, value in overrides.items():
        obj[key] = value
    return obj


def test_gateway_pod_with_defaults() -> None:
    pod = pods.pod_from_object(_pod())
    assert pod is not None
    assert (pod.key, pod.gateway, pod.admin_port) == ("edge/gw-1", "api", 9901)
    assert pod.admin_url == "http://10.1.2.3:9901"
    assert pod.deliverable
    assert pods.configmap_name(pod.gateway) == "gatetrace-api"


def test_pod_without_the_label_is_no_gateway() -> None:
    obj = _pod()
    del obj["metadata"]["labels"][pods.GATEWAY_LABEL]
    assert pods.pod_from_object(obj) is None


def test_terminating_pod_is_no_gateway() -> None:
    obj = _pod()
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pods.pod_from_object(obj) is None


def test_admin_port_from_named_container_port_then_annotation() -> None:
    obj = _pod()
    obj["spec"]["containers"][0]["ports"].append({"name": "gt-admin", "containerPort": 9443})
    pod = pods.pod_from_object(obj)
    assert pod is not None and pod.admin_port == 9443
    obj["metadata"]["annotations"] = {pods.ADMIN_PORT_ANNOTATION: "9555"}
    pod = pods.pod_from_object(obj)
    assert pod is not None and pod.admin_port == 9555


def test_bad_annotation_falls_back() -> None:
    obj = _pod()
    obj["metadata"]["annotations"] = {pods.ADMIN_PORT_ANNOTATION: "not-a-port"}
    pod = pods.pod_from_object(obj)
    assert pod is not None and pod.admin_port == 9901


def test_not_ready_or_no_ip_is_not_deliverable() -> None:
    obj = _pod()
    obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    pod = pods.pod_from_object(obj)
    assert pod is not None and not pod.deliverable
    obj = _pod(status={"phase": "Pending"})
    pod = pods.pod_from_object(obj)
    assert pod is not None and not pod.deliverable and pod.admin_url is None


def test_ipv6_admin_url() -> None:
    obj = _pod()
    obj["status"]["podIP"] = "fd00::5"
    pod = pods.pod_from_object(obj)
    assert pod is not None and pod.admin_url == "http://[fd00::5]:9901"
