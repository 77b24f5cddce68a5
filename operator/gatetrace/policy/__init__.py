"""gatetrace.policy: the TracingPolicy model, validation, merge into effective configs.

May import: gatetrace.runtime, pydantic, PyYAML. Never the gateway, the operator,
kopf, the Kubernetes client or aiohttp.
"""
