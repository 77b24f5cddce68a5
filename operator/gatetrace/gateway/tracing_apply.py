"""The one path every tracing config takes into the gateway: :mod:`gatetrace.embed.tracing_apply`
(a service using the kit applies configs the same way); re-exported here."""

from gatetrace.embed.tracing_apply import (
    Applied,
    Applier,
    ApplyError,
    InvalidConfigError,
    Prepared,
    StaleRevisionError,
    close_reporters,
    validate,
)

__all__ = [
    "Applied",
    "Applier",
    "ApplyError",
    "InvalidConfigError",
    "Prepared",
    "StaleRevisionError",
    "close_reporters",
    "validate",
]
