"""The garbage-collector tuning belongs to the gateway process, not to the app factory:
starting a gateway in a test leaves the test session's collector as it was."""

import gc

from serverharness import TOKEN, settings_for, upstream

from gatetrace.gateway import server


async def test_a_gateway_started_in_process_leaves_the_collector_alone() -> None:
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    async with upstream() as up:
        gw = server.Gateway(settings_for(up), token=TOKEN)
        await gw.start()
        await gw.stop(1.0)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == frozen
