"""Breadcrumbs: the retro addresses of the hops that buffered a pending trace.

A service that buffered spans for a trace answers with the response header
:data:`HEADER` listing its retro address (``http://10.1.2.3:9901``: the admin port of the
kit) followed by the breadcrumbs of its own downstream responses, deduplicated and bounded.
The gateway collects the header from its upstream response, strips it before answering the
client, never forwards one a client sent, and calls each address when it keeps the trace.

Grammar (ours): a comma-separated list of ``http://HOST:PORT`` with HOST an IPv4 address or
a bracketed IPv6 address (no names: a keep is only sent to addresses in the configured
networks, and a name would need resolving first). Anything else is dropped and counted.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "HEADER",
    "MAX_ADDRESS_CHARS",
    "Address",
    "format_header",
    "merge",
    "parse",
    "parse_address",
]

HEADER: Final = "gatetrace-retro"
"""The response header carrying breadcrumbs (lowercase: header names compare without case)."""
MAX_ADDRESS_CHARS: Final = 64
"""``http://[ffff:...:ffff]:65535`` fits; longer members are not addresses."""
_MAX_HEADER_CHARS: Final = 8192
"""A longer header value is dropped whole before it is split."""

Address = tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address, int]
"""(the breadcrumb as written, its IP, its port)."""


def parse_address(text: str) -> Address | None:
    """``http://IP:PORT`` as an :data:`Address`; None when it is not one."""
    if len(text) > MAX_ADDRESS_CHARS or not text.startswith("http://"):
        return None
    hostport = text[7:]
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if end < 0 or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = hostport.partition(":")
        if not sep:
            return None
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if hostport.startswith("[") != (ip.version == 6):
        return None
    return text, ip, port


def parse(values: Sequence[str], limit: int) -> tuple[list[str], int]:
    """The valid breadcrumbs of ``values`` (header values, in order), deduplicated, at most
    ``limit``, and how many members were refused (malformed, or past the limit)."""
    found: list[str] = []
    refused = 0
    for value in values:
        if len(value) > _MAX_HEADER_CHARS:
            refused += 1
            continue
        for raw in value.split(","):
            member = raw.strip(" \t")
            if not member:
                continue
            if parse_address(member) is None:
                refused += 1
            elif member not in found:
                if len(found) < limit:
                    found.append(member)
                else:
                    refused += 1
    return found, refused


def merge(first: Iterable[str], then: Iterable[str], limit: int) -> list[str]:
    """``first`` then ``then``, deduplicated in order, at most ``limit`` members."""
    merged: list[str] = []
    for source in (first, then):
        for member in source:
            if len(merged) >= limit:
                return merged
            if member not in merged:
                merged.append(member)
    return merged


def format_header(addresses: Sequence[str]) -> str:
    """The header value for ``addresses``."""
    return ",".join(addresses)
