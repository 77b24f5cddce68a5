"""Operator settings, grouped as kopf groups its own (one docstring per field).

Filled from the command line by :mod:`gatetrace.cli`; nothing here reads the
environment.
"""

from dataclasses import dataclass

__all__ = ["OperatorSettings"]


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    root_namespace: str = "gatetrace-system"
    """Namespace whose selector-less TracingPolicy is the cluster default."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    admin_token_secret: str = "gatetrace-system/gatetrace-admin-token"  # noqa: S105 -- a name
    """``namespace/name`` of the Secret holding the gateways' admin token (key ``token``)."""
    admin_token_key: str = "token"  # noqa: S105 -- a key name
    """Key of the token in that Secret."""
    push_concurrency: int = 32
    """Pushes in flight at once."""
    push_timeout: float = 5.0
    """Seconds per push attempt."""
    push_attempts: int = 3
    """Attempts per push (with exponential backoff and jitter)."""
    drift_interval: float = 30.0
    """Seconds between checks that each pod still runs its revision."""
    retry_interval: float = 10.0
    """Seconds before failed pods are retried."""
    peering_name: str | None = None
    """kopf peering object: several replicas, only the highest priority one acts."""
    priority: int = 0
    """This replica's peering priority."""
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    """kopf's liveness/readiness probe endpoint; None to disable."""
    metrics_listen: str | None = "0.0.0.0:9090"
    sampling_listen: str | None = None
    """Where the Jaeger remote sampling API (``/sampling``, ``/api/sampling``) is served
    (None: not served; the chart serves it on 5778, Jaeger's port)."""
    """Where /metrics is served; None to disable."""
    log_format: str = "json"
    """Operator log lines: ``json`` (structured, one object per line), ``full`` or ``plain``."""

    @property
    def watched_namespaces(self) -> tuple[str, ...]:
        """The namespaces watched: empty for the whole cluster, else ``namespaces``
        and the root namespace, whose policy is every gateway's cluster default."""
        if not self.namespaces or self.root_namespace in self.namespaces:
            return self.namespaces
        return (*self.namespaces, self.root_namespace)
