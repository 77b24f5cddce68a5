"""Fixtures of the reporter tests: a real local collector per test."""

from collections.abc import AsyncIterator

import pytest
from reportertools import Collector


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    server = await Collector().start()
    try:
        yield server
    finally:
        await server.stop()
