"""The retro settings a running config holds, built from ``spec.retro``
(:class:`gatetrace.policy.retro.Retro`)."""

import ipaddress
from dataclasses import dataclass

from gatetrace.policy import retro as _model

__all__ = ["RetroSettings", "from_model"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RetroSettings:
    """Retroactive collection, as one applied config sets it."""

    enabled: bool = False
    """Mark pending traces (gateway), buffer them (kit), collect them when kept."""
    max_buffer_bytes: int = 16 << 20
    """Bytes of spans the retro buffer holds at most."""
    max_age_seconds: float = 30.0
    """Seconds a buffered trace waits for a keep."""
    allowed_networks: tuple[Network, ...] = ()
    """Keep requests go only to breadcrumbs in these networks."""
    max_breadcrumbs: int = 16
    """Breadcrumbs collected and sent on at most."""
    keep_timeout_seconds: float = 2.0
    """Timeout of one keep request."""
    keep_concurrency: int = 8
    """Keep requests in flight at once."""

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether ``address`` is in one of the allowed networks."""
        return any(address in network for network in self.allowed_networks)


def from_model(retro: _model.Retro) -> RetroSettings:
    """The settings of a validated ``spec.retro``."""
    return RetroSettings(
        enabled=retro.enabled,
        max_buffer_bytes=retro.max_buffer_bytes,
        max_age_seconds=float(retro.max_age_seconds),
        allowed_networks=tuple(ipaddress.ip_network(n) for n in retro.allowed_networks),
        max_breadcrumbs=retro.max_breadcrumbs,
        keep_timeout_seconds=retro.keep_timeout_ms / 1000,
        keep_concurrency=retro.keep_concurrency,
    )
