"""Who is the client? The socket peer, or X-Forwarded-For when a trusted proxy says so.

Anyone can send ``X-Forwarded-For: 1.2.3.4``; only proxies we run (the
configured trusted CIDRs) append truthfully. So the header is read only when
the direct peer is trusted, and then from the right: each trusted hop is
skipped and the right-most address that is *not* trusted is the client
(everything left of it was written by the client itself and proves nothing).
When every hop is trusted the left-most one is the client. A malformed entry
stops the walk: the last trusted address seen is the best we know.
"""

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["ClientIpResolver", "parse_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An address from an X-Forwarded-For member: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``,
    ``[::1]:80`` (ports dropped, IPv4-mapped IPv6 unmapped); None when malformed."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    """Resolves the client address of a request from its peer and X-Forwarded-For values."""

    __slots__ = ("_networks",)

    def __init__(self, trusted: Iterable[Network]) -> None:
        self._networks = tuple(trusted)

    @property
    def enabled(self) -> bool:
        """False when no proxy is trusted: the socket peer is always the client."""
        return bool(self._networks)

    def is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._networks)

    def resolve(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client address; ``forwarded_for`` holds every X-Forwarded-For header value."""
        if not self._networks or not forwarded_for or not peer:
            return peer
        peer_address = parse_address(peer)
        if peer_address is None or not self.is_trusted(peer_address):
            return peer
        nearest = peer_address
        for value in reversed(forwarded_for):
            for member in reversed(value.split(",")):
                address = parse_address(member)
                if address is None:
                    return str(nearest)
                if not self.is_trusted(address):
                    return str(address)
                nearest = address
        return str(nearest)
