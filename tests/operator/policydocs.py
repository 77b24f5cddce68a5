"""TracingPolicy records as the operator reads them from the API server."""

from typing import Any

from gatetrace.operator import core, records


def record(
    namespace: str, name: str, spec: dict[str, Any], created: str = "2026-01-01T00:00:00Z"
) -> core.PolicyRecord:
    """The record of a TracingPolicy object at generation 1 (``namespace, name`` as every
    builder in the tests takes them, e.g. ``tests/policy/policy_builders.pol``)."""
    return records.record_from_object(
        {
            "apiVersion": "gatetrace.dev/v1alpha1",
            "kind": "TracingPolicy",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": 1,
                "creationTimestamp": created,
            },
            "spec": spec,
        }
    )
