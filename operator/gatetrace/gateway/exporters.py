"""Reporter models -> runtime exporters, for :func:`gatetrace.policy.build.build_runtime`.

The policy layer builds the batching processors but may not import aiohttp
(the HTTP transports) nor know the gateway's span store; this module is the
:data:`~gatetrace.policy.build.ExporterFactory` the gateway hands it. Exporters
open their sockets lazily, so building one for a config that is then
rejected costs nothing.
"""

from gatetrace.embed import exporters as _shared
from gatetrace.gateway import store as _store
from gatetrace.policy import build as _build
from gatetrace.policy import model as _model
from gatetrace.policy import reporters as _reporters

__all__ = ["configure_store", "factory"]


def factory(store: _store.SpanStore) -> _build.ExporterFactory:
    """An exporter factory whose ``memory`` reporter writes into ``store``
    (:func:`gatetrace.embed.exporters.factory`, shared with kit-managed services)."""
    return _shared.factory(store)


def configure_store(store: _store.SpanStore, config: _model.TracingConfig) -> None:
    """Apply the bounds of the config's ``memory`` reporter (if any) to ``store``."""
    for reporter in config.reporters:
        if isinstance(reporter, _reporters.MemoryReporter):
            store.configure(
                max_spans=reporter.max_spans,
                max_age_seconds=float(reporter.max_age_seconds),
                max_bytes=reporter.max_bytes,
                max_spans_per_trace=reporter.max_spans_per_trace,
            )
            return
