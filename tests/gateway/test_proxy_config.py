"""The gateway config file: defaults, camelCase keys, errors naming the field."""

import ipaddress
import pathlib

import pytest

from gatetrace.gateway import config

EXAMPLE = """
service: api-gateway
listen: 0.0.0.0:8080
admin: {listen: "127.0.0.1:9901", tokenFile: /var/run/gatetrace/admin-token}
trustedProxies: [10.0.0.0/8, 192.168.1.1]
traceIdHeader: X-Request-Trace
sensitiveHeaders: [X-Api-Key]
routes:
  - {name: users, prefix: /api/users/, upstream: "http://users.shop.svc:8080/", namespace: shop}
  - name: root
    prefix: /
    upstream: https://web.default.svc
    stripPrefix: true
    connectTimeoutMs: 500
    timeoutMs: 1500
tracingFile: /etc/gatetrace/tracing.json
tracing: {sampling: {sampler: {type: const, decision: true}}}
"""


def test_design_example_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(EXAMPLE)
    cfg = config.load_config(path)
    assert cfg.listen == "0.0.0.0:8080"
    assert cfg.admin.token_file == pathlib.Path("/var/run/gatetrace/admin-token")
    assert cfg.trusted_proxies == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
    ]
    assert cfg.trace_id_header == "X-Request-Trace"
    assert cfg.recorded_header_blocklist >= {"authorization", "cookie", "x-api-key"}
    users, root = cfg.routes
    assert users.prefix == "/api/users"
    assert users.upstream == "http://users.shop.svc:8080"
    assert users.namespace == "shop"
    assert (users.connect_timeout_ms, users.timeout_ms) == (2000, 30000)
    assert root.prefix == "/"
    assert root.strip_prefix
    assert (root.connect_timeout_ms, root.timeout_ms) == (500, 1500)
    assert cfg.tracing_file == pathlib.Path("/etc/gatetrace/tracing.json")
    assert cfg.tracing == {"sampling": {"sampler": {"type": "const", "decision": True}}}


def test_empty_file_gives_the_defaults(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    cfg = config.load_config(path)
    assert cfg.service == "api-gateway"
    assert cfg.trace_id_header == "X-Trace-Id"
    assert cfg.routes == []
    assert cfg.tracing is None


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({"listen": "8080"}, "listen", "HOST:PORT"),
        ({"listen": "host:99999"}, "listen", "0-65535"),
        ({"listen": "::1:80"}, "listen", "brackets"),
        ({"admin": {"listen": "x"}}, "admin.listen", "HOST:PORT"),
        ({"admin": {"tokenFle": "/x"}}, "admin.tokenFle", "Extra inputs"),
        ({"trustedProxies": ["10.0.0.1/8"]}, "trustedProxies[0]", "network"),
        ({"traceIdHeader": "X Trace"}, "traceIdHeader", "header name"),
        (
            {"routes": [{"name": "a", "prefix": "api", "upstream": "http://a"}]},
            "routes[0].prefix",
            "start",
        ),
        (
            {"routes": [{"name": "a", "prefix": "/a", "upstream": "ftp://a"}]},
            "routes[0].upstream",
            "http",
        ),
        (
            {"routes": [{"name": "a", "prefix": "/a", "upstream": "http://a?x=1"}]},
            "routes[0].upstream",
            "query",
        ),
        (
            {
                "routes": [
                    {"name": "a", "prefix": "/a", "upstream": "http://a", "namespace": "Shop"}
                ]
            },
            "routes[0].namespace",
            "namespace",
        ),
        (
            {"routes": [{"name": "a", "prefix": "/a", "upstream": "http://a", "timeoutMs": 0}]},
            "routes[0].timeoutMs",
            "greater than 0",
        ),
        ({"routes": [{"name": "a", "prefix": "/a"}]}, "routes[0].upstream", "required"),
        (
            {
                "routes": [
                    {"name": "a", "prefix": "/a", "upstream": "http://a"},
                    {"name": "a", "prefix": "/b", "upstream": "http://b"},
                ]
            },
            "",
            "duplicate",
        ),
        (
            {
                "routes": [
                    {"name": "a", "prefix": "/a", "upstream": "http://a"},
                    {"name": "b", "prefix": "/a/", "upstream": "http://b"},
                ]
            },
            "",
            "same prefix",
        ),
        ({"servce": "x"}, "servce", "Extra inputs"),
        ({"metrics": {"listen": "9464"}}, "metrics.listen", "HOST:PORT"),
        ({"queryApi": {"listen": "[::1:1"}}, "queryApi.listen", "brackets"),
        ({"queryApi": {"token": "x"}}, "queryApi.token", "Extra inputs"),
        (
            {"admin": {"listen": "127.0.0.1:9901"}, "metrics": {"listen": "0.0.0.0:9901"}},
            "",
            "metrics.listen and admin.listen both listen on 0.0.0.0:9901",
        ),
        (
            {"listen": "0.0.0.0:8080", "queryApi": {"listen": "127.0.0.1:8080"}},
            "",
            "queryApi.listen and listen both listen",
        ),
    ],
)
def test_errors_name_the_field(document: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse_config(document, "gw.yaml")
    locs = [loc for loc, _ in caught.value.errors]
    assert field in locs, caught.value.errors
    assert message in str(caught.value)
    assert "gw.yaml" in str(caught.value)


def test_extra_ports_are_off_by_default_and_may_share_a_number_on_other_hosts() -> None:
    plain = config.parse_config({})
    assert (plain.metrics.listen, plain.query_api.listen) == (None, None)
    cfg = config.parse_config(
        {
            "listen": "127.0.0.1:8080",
            "admin": {"listen": "127.0.0.1:0"},
            "metrics": {"listen": "127.0.0.2:8080"},
            "queryApi": {"listen": "127.0.0.1:0"},
        }
    )
    assert cfg.listen_addresses() == {
        "listen": "127.0.0.1:8080",
        "admin.listen": "127.0.0.1:0",
        "metrics.listen": "127.0.0.2:8080",
        "queryApi.listen": "127.0.0.1:0",
    }


def test_the_longest_request_is_the_slowest_routes_connect_plus_timeout() -> None:
    assert config.parse_config({}).longest_request_seconds == 32.0
    routes = [
        {"name": "a", "prefix": "/a", "upstream": "http://a", "timeoutMs": 90_000},
        {"name": "b", "prefix": "/b", "upstream": "http://b", "connectTimeoutMs": 5_000},
    ]
    assert config.parse_config({"routes": routes}).longest_request_seconds == 92.0


def test_unreadable_and_invalid_yaml_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read file"):
        config.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: [unclosed\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(config.ConfigError, match="expected a mapping"):
        config.load_config(listed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::]:80", ("::", 80)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert config.split_host_port(text) == expected
