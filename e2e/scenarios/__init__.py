"""Helpers of the e2e scenario tests (e2e/test_scenario_*.py): Kubernetes objects
driven through the real kubectl (`kubeobj`), gateway and upstream processes bound to
loopback addresses (`gateways`), and the real kopf operator as a subprocess (`operators`).
"""
