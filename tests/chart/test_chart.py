"""The Helm chart rendered by the real helm binary: lint, schema validation of
every object, least-privilege RBAC, hardening, the admin NetworkPolicy, the CRD."""

import json
import pathlib
import random
from typing import Any

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml

from tests.chart.helm import CHART, helm, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S_VERSION = "1.33"
MATRIX = [
    (),
    ("gateway.enabled=true",),
    ("operator.replicas=3",),
    ("operator.watchNamespaces={shop,edge}", "gateway.enabled=true"),
    ("adminToken.existingSecret=my-token", "metrics.serviceMonitor.enabled=true"),
    ("serviceAccount.create=false", "serviceAccount.name=ops"),
    (
        "gateway.enabled=true",
        "gateway.queryApi.enabled=true",
        "gateway.metrics.podMonitor.enabled=true",
    ),
]
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "ClusterKopfPeering", "KopfPeering"}
ALL_PORTS = (
    "gateway.enabled=true",
    "gateway.queryApi.enabled=true",
    "gateway.metrics.podMonitor.enabled=true",
)


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("sets", [(), ("gateway.enabled=true", "operator.replicas=2")])
def test_lint_strict(sets: tuple[str, ...]) -> None:
    argv = ["lint", "--strict", str(CHART)]
    for item in sets:
        argv += ["--set", item]
    result = helm(*argv, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("sets", MATRIX, ids=lambda s: ",".join(s) or "defaults")
def test_every_object_is_valid_kubernetes(sets: tuple[str, ...]) -> None:
    docs = render(*sets)
    assert docs
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rbac_is_exactly_what_the_operator_uses() -> None:
    docs = render()
    (role,) = _by_kind(docs, "ClusterRole")
    granted = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted[(group, resource)] = set(rule["verbs"])
    for verbs in granted.values():
        assert "*" not in verbs
    assert all("*" not in key for key in granted)
    assert granted == {
        ("gatetrace.dev", "tracingpolicies"): {"list", "watch", "patch"},
        ("gatetrace.dev", "tracingpolicies/status"): {"patch"},
        ("", "pods"): {"list", "watch"},
        ("", "configmaps"): {"get", "create", "patch"},
        ("", "secrets"): {"get"},
        ("", "events"): {"create"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
    }
    (binding,) = _by_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["namespace"] == "gatetrace-system"


def test_namespace_list_gets_roles_not_a_cluster_role_for_resources() -> None:
    docs = render("operator.watchNamespaces={shop,edge}")
    roles = _by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["edge", "gatetrace-system", "shop"]
    (cluster,) = _by_kind(docs, "ClusterRole")
    resources = {r for rule in cluster["rules"] for r in rule["resources"]}
    assert resources == {"customresourcedefinitions", "namespaces"}
    (deployment,) = _by_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=shop" in args and "--namespace=edge" in args


def test_peering_only_with_several_replicas() -> None:
    single = render()
    assert not _by_kind(single, "ClusterKopfPeering")
    assert not _by_kind(single, "PodDisruptionBudget")
    many = render("operator.replicas=3")
    assert _by_kind(many, "ClusterKopfPeering")
    assert _by_kind(many, "PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    deployment = next(d for d in _by_kind(many, "Deployment"))
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--priority=random" in args
    assert any(a.startswith("--peering=") for a in args)


def test_peering_follows_the_watched_namespaces_and_the_root_namespace() -> None:
    """With a namespace list the operator also watches the root namespace: kopf
    looks for a KopfPeering there too; only watched namespaces grant peering rights."""
    docs = render(
        "operator.watchNamespaces={shop}", "operator.rootNamespace=gt-root", "operator.replicas=2"
    )
    peerings = sorted(p["metadata"]["namespace"] for p in _by_kind(docs, "KopfPeering"))
    assert peerings == ["gt-root", "shop"]
    peering_rights = {
        role["metadata"]["namespace"]: any(
            "kopfpeerings" in rule["resources"] for rule in role["rules"]
        )
        for role in _by_kind(docs, "Role")
    }
    assert peering_rights == {"shop": True, "gt-root": True, "gatetrace-system": False}
    (cluster,) = _by_kind(docs, "ClusterRole")
    assert not any("kopfpeerings" in rule["resources"] for rule in cluster["rules"])


@pytest.mark.parametrize("sets", [(), ("gateway.enabled=true",)])
def test_every_pod_is_hardened(sets: tuple[str, ...]) -> None:
    for deployment in _by_kind(render(*sets), "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"]


def test_gateway_is_labelled_for_the_operator_and_admin_port_is_fenced() -> None:
    docs = render("gateway.enabled=true")
    gateway = next(d for d in _by_kind(docs, "Deployment") if "gateway" in d["metadata"]["name"])
    pod = gateway["spec"]["template"]
    assert pod["metadata"]["labels"]["gatetrace.dev/gateway"] == "api-gateway"
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports["gt-admin"] == 9901
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["tracing"]["configMap"] == {"name": "gatetrace-api-gateway", "optional": True}
    (policy,) = _by_kind(docs, "NetworkPolicy")
    admin_rule = next(r for r in policy["spec"]["ingress"] if "from" in r)
    assert admin_rule["ports"] == [{"protocol": "TCP", "port": 9901}]
    operator_labels = admin_rule["from"][0]["podSelector"]["matchLabels"]
    (operator,) = [
        d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-operator")
    ]
    assert operator_labels.items() <= operator["spec"]["template"]["metadata"]["labels"].items()
    config = yaml.safe_load(_by_kind(docs, "ConfigMap")[0]["data"]["gateway.yaml"])
    assert config["tracingFile"] == "/etc/gatetrace/tracing/tracing.json"
    assert config["admin"]["tokenFile"] == "/var/run/gatetrace/admin-token/token"


def _gateway_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in _by_kind(docs, "Deployment") if "gateway" in d["metadata"]["name"])
    pod: dict[str, Any] = deployment["spec"]["template"]
    return pod


def _ingress_for(docs: list[dict[str, Any]], port: int) -> list[dict[str, Any]]:
    (policy,) = _by_kind(docs, "NetworkPolicy")
    rules = [
        r for r in policy["spec"]["ingress"] if {"protocol": "TCP", "port": port} in r["ports"]
    ]
    assert len(rules) == 1, rules
    peers: list[dict[str, Any]] = rules[0]["from"]
    return peers


def test_gateway_metrics_have_their_own_port_open_to_the_scrapers_only() -> None:
    docs = render("gateway.enabled=true")
    pod = _gateway_pod(docs)
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports["gt-metrics"] == 9464
    assert "gt-query" not in ports  # the read-only query API is opt-in
    assert _ingress_for(docs, 9464) == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    config = yaml.safe_load(_by_kind(docs, "ConfigMap")[0]["data"]["gateway.yaml"])
    assert config["metrics"] == {"listen": "0.0.0.0:9464"}
    assert "queryApi" not in config
    assert not _by_kind(docs, "PodMonitor")
    assert [s["metadata"]["name"] for s in _by_kind(docs, "Service") if "query" in str(s)] == []
    scraper = "gateway.metrics.allowFrom[0].namespaceSelector.matchLabels.team=obs"
    custom = _ingress_for(render("gateway.enabled=true", scraper), 9464)
    assert custom[0]["namespaceSelector"] == {"matchLabels": {"team": "obs"}}
    off = render("gateway.enabled=true", "gateway.metrics.enabled=false")
    assert "metrics" not in yaml.safe_load(_by_kind(off, "ConfigMap")[0]["data"]["gateway.yaml"])
    assert all(9464 not in [p["port"] for p in r["ports"]] for r in _ingress_rules(off))


def _ingress_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (policy,) = _by_kind(docs, "NetworkPolicy")
    rules: list[dict[str, Any]] = policy["spec"]["ingress"]
    return rules


def test_the_gateway_podmonitor_scrapes_the_metrics_port_of_the_gateway_pods() -> None:
    docs = render(*ALL_PORTS, "gateway.metrics.podMonitor.labels.release=kps")
    (monitor,) = _by_kind(docs, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    pod = _gateway_pod(docs)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert endpoint["port"] in names
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "30s")


def test_the_read_only_query_api_is_opt_in_with_its_service_and_fence() -> None:
    docs = render(*ALL_PORTS)
    pod = _gateway_pod(docs)
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports["gt-query"] == 16686
    assert _ingress_for(docs, 16686) == [
        {"podSelector": {"matchLabels": {"gatetrace.dev/query-client": "true"}}}
    ]
    (service,) = [s for s in _by_kind(docs, "Service") if s["metadata"]["name"].endswith("-query")]
    assert service["spec"]["ports"] == [{"name": "query", "port": 16686, "targetPort": "gt-query"}]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_the_rendered_gateway_config_is_one_the_gateway_accepts() -> None:
    from gatetrace.gateway import config as gateway_config

    for sets in [("gateway.enabled=true",), ALL_PORTS]:
        docs = render(*sets)
        text = _by_kind(docs, "ConfigMap")[0]["data"]["gateway.yaml"]
        parsed = gateway_config.parse_config(yaml.safe_load(text), "chart")
        assert parsed.metrics.listen == "0.0.0.0:9464"
        assert parsed.query_api.listen == ("0.0.0.0:16686" if sets == ALL_PORTS else None)


@pytest.mark.parametrize(
    ("sets", "workers"),
    [
        ((), 1),  # the default limit: cpu "1"
        (("gateway.resources.limits.cpu=1500m",), 2),
        (("gateway.resources.limits.cpu=250m",), 1),
        (("gateway.resources.limits.cpu=4",), 4),
        (("gateway.resources.limits.cpu=2.5",), 3),
        (("gateway.resources.limits.cpu=4", "gateway.workers=2"), 2),
        (("gateway.resources.limits.cpu=null",), None),  # the gateway counts its CPUs
    ],
)
def test_gateway_workers_follow_the_container_cpu_limit(
    sets: tuple[str, ...], workers: int | None
) -> None:
    from gatetrace.gateway import config as gateway_config

    docs = render("gateway.enabled=true", *sets)
    text = _by_kind(docs, "ConfigMap")[0]["data"]["gateway.yaml"]
    parsed = gateway_config.parse_config(yaml.safe_load(text), "chart")
    assert parsed.workers == workers


def _kubelet_env(container: dict[str, Any], pod: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: Downward API fields from
    ``pod`` and ``$(VAR)`` references to earlier variables expanded."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            env[item["name"]] = pod[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            value = item["value"]
            for name, known in env.items():
                value = value.replace(f"$({name})", known)
            env[item["name"]] = value
    return env


def test_gateway_pods_carry_the_kubernetes_resource_attributes() -> None:
    from gatetrace.gateway import config as gateway_config
    from gatetrace.gateway import server

    docs = render(
        "gateway.enabled=true",
        "gateway.resourceAttributes.deployment\\.environment\\.name=prod eu\\,1",
        "gateway.resourceAttributes.team=edge",
    )
    (container,) = _gateway_pod(docs)["spec"]["containers"]
    fields = {
        "metadata.name": "gt-gatetrace-api-gateway-5d8c-x2v9q",
        "metadata.uid": "3b1e5c1a-0000-4000-8000-0000000000aa",
        "metadata.namespace": "gatetrace-system",
        "spec.nodeName": "node-7",
    }
    env = _kubelet_env(container, fields)
    assert "$(" not in env["OTEL_RESOURCE_ATTRIBUTES"]
    text = _by_kind(docs, "ConfigMap")[0]["data"]["gateway.yaml"]
    settings = gateway_config.parse_config(yaml.safe_load(text), "chart")
    resource = server.gateway_resource(settings, env)
    assert resource.problems == ()
    attrs = dict(resource.attributes)
    deployment = next(d for d in _by_kind(docs, "Deployment") if "gateway" in d["metadata"]["name"])
    assert attrs["k8s.pod.name"] == fields["metadata.name"]
    assert attrs["k8s.pod.uid"] == fields["metadata.uid"]
    assert attrs["k8s.namespace.name"] == "gatetrace-system"
    assert attrs["k8s.node.name"] == "node-7"
    assert attrs["k8s.deployment.name"] == deployment["metadata"]["name"]
    assert attrs["k8s.container.name"] == container["name"] == "gateway"
    assert attrs["deployment.environment.name"] == "prod eu,1"  # percent-encoded and back
    assert attrs["team"] == "edge"
    assert resource.service_name == settings.service == "api-gateway"


def test_admin_token_secret_is_generated_once_and_kept() -> None:
    docs = render()
    (secret,) = _by_kind(docs, "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(secret["data"]["token"]) >= 48
    template = (CHART / "templates" / "secret-admin-token.yaml").read_text()
    assert "lookup" in template  # the real upgrade is exercised against the API server in e2e
    assert not _by_kind(render("adminToken.existingSecret=mine"), "Secret")


def test_chart_crd_is_the_generated_one() -> None:
    assert (CHART / "crds" / "tracingpolicies.gatetrace.dev.yaml").read_text() == (
        ROOT / "crds" / "tracingpolicies.gatetrace.dev.yaml"
    ).read_text()


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (("operator.replicas=0",), "/operator/replicas"),
        (("gateway.routes[0].prefix=api",), "does not match pattern"),
        (("image.pullPolicy=Sometimes",), "/image/pullPolicy"),
        (("operator.unknownKey=1",), "unknownKey"),
        # the gateway config model's rules, through the chart (the pod would crash-loop)
        (("gateway.enabled=true", "gateway.routes[0].name=has space"), "/gateway/routes/0/name"),
        (("gateway.routes[0].timeoutMs=99999999",), "/gateway/routes/0/timeoutMs"),
        (("gateway.routes[0].upstream=http://u/x?q=1",), "/gateway/routes/0/upstream"),
        (("gateway.routes[0].namespace=Not_A_Namespace",), "/gateway/routes/0/namespace"),
        (
            (
                "gateway.enabled=true",
                "gateway.routes[0].name=a",
                "gateway.routes[0].prefix=/api",
                "gateway.routes[0].upstream=http://a:80",
                "gateway.routes[1].name=b",
                "gateway.routes[1].prefix=/api/",
                "gateway.routes[1].upstream=http://b:80",
            ),
            'gateway.routes: "b" and "a" have the same prefix "/api"',
        ),
        (
            (
                "gateway.enabled=true",
                "gateway.routes[0].name=a",
                "gateway.routes[0].prefix=/a",
                "gateway.routes[0].upstream=http://a:80",
                "gateway.routes[1].name=a",
                "gateway.routes[1].prefix=/b",
                "gateway.routes[1].upstream=http://b:80",
            ),
            'duplicate route name "a"',
        ),
        (
            ("gateway.enabled=true", "gateway.port=9901", "gateway.adminPort=9901"),
            "gateway.port and gateway.adminPort must differ",
        ),
        (
            ("gateway.enabled=true", "gateway.metrics.port=9901"),
            "gateway.adminPort and gateway.metrics.port must differ (both 9901)",
        ),
        (
            ("gateway.enabled=true", "gateway.queryApi.enabled=true", "gateway.queryApi.port=8080"),
            "gateway.port and gateway.queryApi.port must differ (both 8080)",
        ),
        (("gateway.metrics.allowFrom[0].podSelector.foo=x",), "/gateway/metrics/allowFrom/0"),
        (("gateway.queryApi.token=x",), "token"),
        (("gateway.resourceAttributes.a b=x",), "invalid propertyName 'a b'"),
        # the chart sets the k8s.* attributes from the Downward API: not to be overridden
        (("gateway.resourceAttributes.k8s\\.pod\\.name=x",), "invalid propertyName 'k8s.pod.name'"),
    ],
)
def test_bad_values_fail_with_a_clear_message(sets: tuple[str, ...], needle: str) -> None:
    argv = ["template", "gt", str(CHART)]
    for item in sets:
        argv += ["--set", item]
    result = helm(*argv, check=False)
    assert result.returncode != 0
    assert needle in result.stderr


def test_values_are_documented_line_by_line() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    keys = [
        i
        for i, line in enumerate(lines)
        if line.strip().endswith(":") and not line.strip().startswith("#")
    ]
    for index in keys:
        above = lines[index - 1].strip()
        assert above.startswith("#"), f"values.yaml line {index + 1} has no comment: {lines[index]}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False


def test_chart_route_schema_is_derived_from_the_gateway_config_model() -> None:
    from gatetrace.gateway import values_schema

    schema = json.loads((CHART / "values.schema.json").read_text())
    routes = schema["properties"]["gateway"]["properties"]["routes"]
    assert routes == {"type": "array", "items": values_schema.route_schema()}, (
        "run `make chart-schema` to regenerate the chart schema"
    )


def test_every_route_the_chart_accepts_the_gateway_accepts_too() -> None:
    """The rendered gateway config of good values parses; the model and the chart agree."""
    from gatetrace.gateway import config as gateway_config

    sets = (
        "gateway.enabled=true",
        "gateway.routes[0].name=users.v2_x-1",
        "gateway.routes[0].prefix=/api/users",
        "gateway.routes[0].upstream=http://users.shop.svc:8080/base",
        "gateway.routes[0].namespace=shop",
        "gateway.routes[0].timeoutMs=3600000",
    )
    docs = render(*sets)
    (cm,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("gateway-config")
    ]
    parsed = gateway_config.parse_config(yaml.safe_load(cm["data"]["gateway.yaml"]))
    assert parsed.routes[0].name == "users.v2_x-1"


_GOOD_ROUTE: dict[str, Any] = {"name": "r", "prefix": "/r", "upstream": "http://r:80"}
_ROUTE_CANDIDATES: dict[str, list[Any]] = {
    "name": ["users.v2_x-1", "a b", "", "x" * 129, "caf\u00e9", "a/b", 7],
    "prefix": ["/", "/api/", "api", "/a b", "/a?x", "/a#x", "/%2e/;p", "/" + "a" * 1024, ""],
    "upstream": [
        "http://users.shop.svc:8080/base",
        "https://[::1]:8443/x",
        "http://[::ffff:1.2.3.4]",
        "http://u:p@a:1/x",
        "http://a:00080",
        "http://a:65536",
        "http://a:99999",
        "http://a:x",
        "http://:80",
        "http://@a",
        "http://[zz]",
        "http://[1.2.3.4]",
        "http://[:0]",
        "http://[::1",
        "http://a]b",
        "http://a/x?q=1",
        "http://a/#f",
        "ftp://a",
        "http://a b",
        "http://a:80" + "/x" * 1100,
    ],
    "namespace": ["shop", "Shop", "-a", "a-", "a" * 64, "a.b", None],
    "timeoutMs": [1, 3_600_000, 0, -1, 3_600_001, 99_999_999, 1.5, True, "5"],
    "connectTimeoutMs": [2000, 0, 3_600_001, None],
    "stripPrefix": [True, False, "yes", 1],
    "extra": [1],
}


def _route_cases() -> list[dict[str, Any]]:
    cases = [
        {**_GOOD_ROUTE, field: value}
        for field, values in _ROUTE_CANDIDATES.items()
        for value in values
    ]
    rng = random.Random(14)
    parts = [
        "a",
        ":",
        ":80",
        ":0",
        ":65536",
        ":x",
        "@",
        "[::1]",
        "[",
        "]",
        "/",
        "?",
        "#",
        " ",
        "%",
        "[1.2.3.4]",
        "::",
        "1",
        "ffff",
        "1.2.3.4",
        ".",
        "01",
    ]
    for _ in range(3000):
        tail = "".join(rng.choice(parts) for _ in range(rng.randint(1, 6)))
        cases.append({**_GOOD_ROUTE, "upstream": rng.choice(["http://", "http://["]) + tail})
    return cases


def _gateway_accepts(route: dict[str, Any]) -> bool:
    from gatetrace.gateway import config as gateway_config

    try:
        gateway_config.RouteConfig.model_validate(route)
    except pydantic.ValidationError:
        return False
    return True


def _route_schema() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    routes: dict[str, Any] = schema["properties"]["gateway"]["properties"]["routes"]["items"]
    return routes


def test_every_route_rule_of_the_model_is_in_the_chart_schema() -> None:
    """Whatever the chart's route schema accepts, the gateway's config model accepts too."""
    validator = jsonschema.Draft7Validator(_route_schema())
    cases = _route_cases()
    slipping = [c for c in cases if validator.is_valid(c) and not _gateway_accepts(c)]
    assert slipping == []
    refused = sum(not _gateway_accepts(c) for c in cases)
    assert refused > 100  # the corpus does try the model's rules


def test_helm_refuses_the_routes_the_gateway_refuses(tmp_path: pathlib.Path) -> None:
    """The same, by the real helm (Go regular expressions): one bad route per index."""
    bad = [
        c
        for c in (
            {**_GOOD_ROUTE, field: value}
            for field, values in _ROUTE_CANDIDATES.items()
            for value in values
        )
        if not _gateway_accepts(c)
    ]
    validator = jsonschema.Draft7Validator(_route_schema())
    # what the schema accepts by Python's regular expressions, helm accepts too
    good = [c for c in _route_cases()[:200] if validator.is_valid(c)]
    good = [{**c, "name": f"g{i}", "prefix": f"/g{i}"} for i, c in enumerate(good)]
    assert len(bad) > 30 and len(good) > 20
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"gateway": {"enabled": True, "routes": bad + good}}))
    result = helm("template", "gt", str(CHART), "-f", str(values), check=False)
    assert result.returncode != 0
    for index in range(len(bad)):
        assert f"at '/gateway/routes/{index}" in result.stderr, bad[index]
    for index in range(len(bad), len(bad) + len(good)):
        assert f"at '/gateway/routes/{index}" not in result.stderr, good[index - len(bad)]


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (("gateway.service=" + "s" * 257,), "at '/gateway/service'"),
        (("gateway.trustedProxies[0]=notanip",), "at '/gateway/trustedProxies/0'"),
        (("gateway.workers=0",), "at '/gateway/workers'"),
        (("gateway.workers=65",), "at '/gateway/workers'"),
    ],
)
def test_gateway_fields_the_gateway_refuses_are_refused(sets: tuple[str, ...], needle: str) -> None:
    argv = ["template", "gt", str(CHART), "--set", "gateway.enabled=true"]
    for item in sets:
        argv += ["--set", item]
    result = helm(*argv, check=False)
    assert result.returncode != 0
    assert needle in result.stderr


def test_the_operator_serves_remote_sampling_through_its_service() -> None:
    from gatetrace.operator import command

    docs = render()
    (deployment,) = [
        d for d in _by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-operator")
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--sampling-listen=0.0.0.0:5778" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["sampling"] == 5778
    (service,) = [
        s for s in _by_kind(docs, "Service") if s["metadata"]["name"].endswith("-sampling")
    ]
    assert service["spec"]["ports"] == [
        {"name": "sampling", "port": 5778, "targetPort": "sampling"}
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # the rendered args are ones the operator's own parser accepts
    import argparse

    parser = argparse.ArgumentParser()
    command.register(parser)
    assert (
        parser.parse_args(
            container["args"][1:] if container["args"][0] == "operator" else container["args"]
        ).sampling_listen
        == "0.0.0.0:5778"
    )
    off = render("remoteSampling.enabled=false")
    assert not [s for s in _by_kind(off, "Service") if s["metadata"]["name"].endswith("-sampling")]
