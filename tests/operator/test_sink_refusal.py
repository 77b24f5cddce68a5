"""A sink that refuses a gateway's config (its ConfigMap belongs to someone else): that
gateway's pods are not pushed and say why; the other gateways go on (real admin APIs)."""

from collections.abc import Mapping, Sequence
from typing import Any

from gatetrace.operator import core, delivery, planner, standalone
from tests.operator import gateways as gw
from tests.operator import policydocs


class RefusingSink(standalone.FileSink):
    """Refuses the ConfigMap of the ``blocked`` gateway, like KubeSink for a foreign one."""

    def __init__(self, blocked: str) -> None:
        super().__init__()
        self.blocked = blocked

    async def store_config(
        self,
        gateway: core.GatewayKey,
        revision: int,
        version: str,
        config: Mapping[str, Any],
        *,
        combined: str,
        sources: Sequence[Mapping[str, str]] = (),
    ) -> None:
        if gateway[1] == self.blocked:
            raise core.SinkRefusedError(
                f"ConfigMap {gateway[0]}/gatetrace-{gateway[1]} is not ours"
            )
        await super().store_config(
            gateway, revision, version, config, combined=combined, sources=sources
        )


async def test_a_refused_configmap_holds_that_gateway_back_and_names_why() -> None:
    async with gw.gateways(2) as (theirs, ours):
        sink = RefusingSink("theirs")
        client = delivery.AdminClient(lambda: gw.TOKEN)
        try:
            pusher = delivery.Pusher(client, retry=delivery.RetryPolicy(attempts=1, timeout=2.0))
            reconciler = core.Reconciler(sink, pusher, planner.IndexPlanner("gatetrace-system"))
            reconciler.upsert_pod(standalone.GatewaySpec("theirs", theirs.url, "shop").pod())
            reconciler.upsert_pod(standalone.GatewaySpec("ours", ours.url, "shop").pod())
            reconciler.upsert_policy(
                policydocs.record("gatetrace-system", "default", {"tags": {"team": "x"}})
            )
            await reconciler.converge()
        finally:
            await client.close()
        assert ours.holder.current is not None
        assert theirs.holder.current is None
        state = reconciler.pod_states["shop/theirs"]
        assert state.state == "Failed"
        assert "is not ours" in state.message
