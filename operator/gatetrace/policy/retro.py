"""Retroactive collection settings (``spec.retro``): complete error and slow traces.

While a gateway's sampling decision is pending (``sampling.prioritize`` on, the trace not
sampled yet), it marks the trace pending in ``tracestate`` (``gt=p``). Services running the
embedding kit (:mod:`gatetrace.embed`) buffer the spans of such a trace instead of dropping
them and answer with a breadcrumb (their retro address). When the gateway keeps the trace
(error, slow, within the priority budget) it asks each breadcrumb to export that trace's
buffered spans; traces it does not keep expire from the buffers.
"""

import ipaddress
from typing import Annotated, Final

import pydantic

from gatetrace.policy import messages as _messages
from gatetrace.policy import wire

__all__ = ["DEFAULT_ALLOWED_NETWORKS", "Network", "Retro"]

DEFAULT_ALLOWED_NETWORKS: Final = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "fc00::/7",
    "::1/128",
)
"""Private (RFC 1918, RFC 6598 shared, IPv6 unique-local) pod networks and loopback."""


def _check_network(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"{_messages.echo(value)} is not a CIDR network ({e})") from e
    return value


Network = Annotated[
    str,
    pydantic.Field(min_length=2, max_length=64),
    pydantic.AfterValidator(_check_network),
]
"""An IPv4 or IPv6 network in CIDR notation, host bits zero (``10.0.0.0/8``, ``::1/128``)."""


class Retro(wire.WireModel):
    """Retroactive collection: services buffer the spans of pending traces and export them
    when the gateway keeps the trace (see the README's "Complete error traces")."""

    enabled: bool = True
    """Mark pending traces, buffer them in services running the kit and collect them when
    kept. Default true; it has an effect only with ``sampling.prioritize``."""
    max_buffer_bytes: Annotated[int, pydantic.Field(ge=65_536, le=1 << 30)] = 16 << 20
    """Bytes of spans a service buffers at most (oldest traces evicted first). Default 16 MiB."""
    max_age_seconds: Annotated[int, pydantic.Field(ge=1, le=600)] = 30
    """Seconds a buffered trace waits for a keep before it expires. Default 30."""
    allowed_networks: Annotated[
        list[Network], pydantic.Field(max_length=64, json_schema_extra=wire.LIST_SET)
    ] = pydantic.Field(default_factory=lambda: list(DEFAULT_ALLOWED_NETWORKS))
    """Keep requests go only to breadcrumb addresses in these networks. Default: private
    pod networks and loopback."""
    max_breadcrumbs: Annotated[int, pydantic.Field(ge=1, le=64)] = 16
    """Breadcrumbs a response header carries (and a keep follows) at most. Default 16."""
    keep_timeout_ms: Annotated[int, pydantic.Field(ge=1, le=60_000)] = 2000
    """Timeout of one keep request. Default 2000."""
    keep_concurrency: Annotated[int, pydantic.Field(ge=1, le=256)] = 8
    """Keep requests in flight at once per pod. Default 8."""
