"""gatetrace.gateway: the traced aiohttp reverse proxy, its admin API and query API.

May import: gatetrace.runtime, gatetrace.policy, aiohttp. Never gatetrace.operator,
kopf or the Kubernetes client.
"""
