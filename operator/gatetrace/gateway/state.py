"""The gateway's live tracing state: :mod:`gatetrace.embed.state`, which the embedding kit
shares (a service and a gateway swap configs the same way); re-exported here."""

from gatetrace.embed.state import (
    ActiveTracing,
    BaggageFilter,
    Closable,
    InFlight,
    PrioritySettings,
    TracingHolder,
)

__all__ = [
    "ActiveTracing",
    "BaggageFilter",
    "Closable",
    "InFlight",
    "PrioritySettings",
    "TracingHolder",
]
