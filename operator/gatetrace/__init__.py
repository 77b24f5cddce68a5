"""gatetrace: live-steerable distributed tracing for API gateways.

Sub-packages, bottom layer first (import-linter holds the order):

- :mod:`gatetrace.runtime`: ids, spans, context, propagation, samplers, reporters.
- :mod:`gatetrace.policy`: the TracingPolicy model, merge into effective configs.
- :mod:`gatetrace.gateway`: the traced reverse proxy, admin and query APIs.
- :mod:`gatetrace.operator`: the kopf operator and the standalone reconciler.
- :mod:`gatetrace.cli`: the ``gatetrace`` command.
"""

__version__ = "0.1.0"
