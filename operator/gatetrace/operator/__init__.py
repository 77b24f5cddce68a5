"""gatetrace.operator: the kopf operator and the standalone reconciler.

Watches TracingPolicies and gateway pods, computes each pod's effective config
and pushes it to the pod's admin API. May import: gatetrace.runtime,
gatetrace.policy, kopf, the Kubernetes client, aiohttp (as an HTTP client).
Never gatetrace.gateway.
"""
