"""The operator's Prometheus metrics (reconciles, pushes, latency, pods by state)."""

from gatetrace.runtime import metrics as _m

__all__ = ["OperatorMetrics"]


class OperatorMetrics:
    def __init__(self, registry: _m.Registry | None = None) -> None:
        self.registry = registry if registry is not None else _m.Registry()
        r = self.registry
        self.reconciles = r.counter(
            "gatetrace_operator_reconciles", "Converge passes by result", ["result"]
        )
        self.pushes = r.counter(
            "gatetrace_operator_pushes", "Config pushes to gateway pods by outcome", ["outcome"]
        )
        self.push_seconds = r.histogram(
            "gatetrace_operator_push_seconds", "Time to push a config to one pod (with retries)"
        )
        self.pods = r.gauge("gatetrace_operator_pods", "Gateway pods by delivery state", ["state"])
        self.drift = r.counter(
            "gatetrace_operator_drift_detected", "Pods found running another revision", []
        )
        self.stale_policies = r.gauge(
            "gatetrace_operator_policies_stale",
            "Policies whose newest generation is invalid, running their last valid one",
            [],
        )
