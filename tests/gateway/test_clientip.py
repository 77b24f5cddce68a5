"""Client IP: X-Forwarded-For believed only from trusted proxies, right-most untrusted hop."""

import ipaddress

import pytest

from gatetrace.gateway import clientip


def _resolver(*cidrs: str) -> clientip.ClientIpResolver:
    return clientip.ClientIpResolver(ipaddress.ip_network(c) for c in cidrs)


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    resolver = _resolver()
    assert not resolver.enabled
    assert resolver.resolve("192.0.2.1", ["203.0.113.5"]) == "192.0.2.1"


def test_untrusted_peer_cannot_claim_another_address() -> None:
    resolver = _resolver("10.0.0.0/8")
    assert resolver.resolve("192.0.2.1", ["203.0.113.5"]) == "192.0.2.1"


def test_trusted_peer_gives_the_right_most_untrusted_address() -> None:
    resolver = _resolver("10.0.0.0/8")
    # the client forged 1.1.1.1; 203.0.113.5 is what our first trusted proxy saw
    assert resolver.resolve("10.0.0.1", ["1.1.1.1, 203.0.113.5, 10.2.3.4"]) == "203.0.113.5"


def test_several_header_lines_are_read_as_one_list() -> None:
    resolver = _resolver("10.0.0.0/8")
    assert resolver.resolve("10.0.0.1", ["198.51.100.7", "10.9.9.9"]) == "198.51.100.7"


def test_all_trusted_gives_the_left_most() -> None:
    resolver = _resolver("10.0.0.0/8")
    assert resolver.resolve("10.0.0.1", ["10.0.0.7, 10.0.0.8"]) == "10.0.0.7"


def test_malformed_member_stops_at_the_nearest_trusted_hop() -> None:
    resolver = _resolver("10.0.0.0/8")
    assert resolver.resolve("10.0.0.1", ["203.0.113.5, garbage, 10.0.0.9"]) == "10.0.0.9"
    assert resolver.resolve("10.0.0.1", ["not-an-ip"]) == "10.0.0.1"
    assert resolver.resolve("10.0.0.1", ["203.0.113.5,"]) == "10.0.0.1"


def test_empty_header_means_the_peer() -> None:
    resolver = _resolver("10.0.0.0/8")
    assert resolver.resolve("10.0.0.1", []) == "10.0.0.1"
    assert resolver.resolve(None, ["203.0.113.5"]) is None


def test_ipv6_and_ports() -> None:
    resolver = _resolver("10.0.0.0/8", "fd00::/8")
    assert resolver.resolve("fd00::1", ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert resolver.resolve("10.0.0.1", ["198.51.100.7:5555"]) == "198.51.100.7"
    assert resolver.resolve("::ffff:10.0.0.1", ["198.51.100.7"]) == "198.51.100.7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("1.2.3.4:80", "1.2.3.4"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("", None),
        ("unknown", None),
        ("1.2.3.4.5", None),
        ("[::1", None),
        ("x" * 100, None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = clientip.parse_address(text)
    assert (str(parsed) if parsed is not None else None) == expected
