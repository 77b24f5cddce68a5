"""A small aiohttp app on 127.0.0.1 standing in for the API server's few routes a test
needs, with a Kubernetes client pointed at it."""

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from kubernetes import client as k8s

from tests import loopback


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[k8s.ApiClient]:
    """Serve ``app`` on a free loopback port; a client for it until the block ends."""
    runner, url = await loopback.start(app, access_log=None, shutdown_timeout=0.5)
    configuration = k8s.Configuration()
    configuration.host = url
    client = k8s.ApiClient(configuration)
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
        await runner.cleanup()
