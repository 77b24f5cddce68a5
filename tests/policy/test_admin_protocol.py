"""The admin protocol, written once: what the operator sends is what the gateway accepts,
and what the gateway answers is what the operator reads."""

import json

import pytest

from gatetrace.policy import admin_protocol as protocol
from gatetrace.policy import errors


def test_the_operators_body_is_what_the_gateway_accepts() -> None:
    sent = protocol.put_body(7, {"tags": {"a": "b"}})
    parsed = protocol.parse_put(json.loads(json.dumps(sent)))
    assert (parsed.revision, parsed.config, parsed.sources) == (7, {"tags": {"a": "b"}}, ())


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"config": {}}, "revision", "field required"),
        ({"revision": 1}, "config", "field required"),
        ({"revision": -1, "config": {}}, "revision", "int64"),
        ({"revision": 2**63, "config": {}}, "revision", "int64"),
        ({"revision": True, "config": {}}, "revision", "int64"),
        ({"revision": 1, "config": {}, "extra": 1}, "extra", "unknown field"),
        ({"revision": 1, "config": {}, "sources": "x"}, "sources", "list of objects"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, object], loc: str, message: str) -> None:
    with pytest.raises(errors.ValidationFailed) as raised:
        protocol.parse_put(body)
    assert any(e.loc == loc and message in e.msg for e in raised.value.errors), raised.value


def test_a_body_that_is_not_an_object_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="JSON object"):
        protocol.parse_put([1, 2])


def test_the_gateways_answer_is_what_the_operator_reads() -> None:
    body = protocol.running_body(9, "sha256:x", "2026-01-01T00:00:00.000Z", {}, [])
    assert protocol.parse_running(json.loads(json.dumps(body))) == protocol.Running(9, "sha256:x")
    assert protocol.parse_running({"revision": "9"}) is None
    assert protocol.parse_running([]) is None


def test_error_detail_formats() -> None:
    body = json.dumps({"errors": [{"loc": ["a", "b"], "msg": "bad"}]})
    assert protocol.error_detail(body) == "a.b: bad"
    assert protocol.error_detail(json.dumps({"error": "stale"})) == "stale"
    assert protocol.error_detail("plain") == "plain"
