"""The operator's side of the contract, against a real admin server: its AdminClient's
PUT/GET outcomes and its ConfigMap document read by the tracing file watcher."""

import pathlib

import pytest
from adminharness import TOKEN, running_admin

from gatetrace.gateway import state, tracing_apply, tracing_file
from gatetrace.operator import core, delivery
from gatetrace.policy import effective, model
from gatetrace.runtime import metrics

pytestmark = pytest.mark.timeout(30)

CONFIG = {"sampling": {"sampler": {"type": "probabilistic", "rate": 0.2}}}


def _request(url: str, revision: int, config: dict[str, object]) -> delivery.PushRequest:
    version = effective.config_version(model.TracingConfig.model_validate(config))
    return delivery.PushRequest("gw-0", url, revision, version, config)


async def test_admin_client_outcomes() -> None:
    async with running_admin() as a:
        url = str(a.client.make_url("")).rstrip("/")
        client = delivery.AdminClient(lambda: TOKEN)
        try:
            outcome, _ = await client.put_once(_request(url, 3, CONFIG), 5.0)
            assert outcome is delivery.PushOutcome.APPLIED
            running = await client.get_running(url, 5.0)
            assert running is not None
            # the gateway reports the same content hash the operator computed
            assert running == delivery.RunningState(3, _request(url, 3, CONFIG).version)
            again, _ = await client.put_once(_request(url, 3, CONFIG), 5.0)
            assert again is delivery.PushOutcome.APPLIED
            stale, message = await client.put_once(_request(url, 2, CONFIG), 5.0)
            assert stale is delivery.PushOutcome.STALE
            assert "older" in message
            bad = {"sampling": {"sampler": {"type": "probabilistic", "rate": 9}}}
            request = delivery.PushRequest("gw-0", url, 4, "x", bad)
            rejected, detail = await client.put_once(request, 5.0)
            assert rejected is delivery.PushOutcome.REJECTED
            assert "rate" in detail
        finally:
            await client.close()
        wrong = delivery.AdminClient(lambda: "not-the-token")
        try:
            refused, _ = await wrong.put_once(_request(url, 5, CONFIG), 5.0)
            assert refused is delivery.PushOutcome.UNAUTHORIZED
        finally:
            await wrong.close()


async def test_configmap_document_is_what_the_watcher_reads(tmp_path: pathlib.Path) -> None:
    version = effective.config_version(model.TracingConfig.model_validate(CONFIG))
    path = tmp_path / "tracing.json"
    path.write_text(core.config_document(7, version, CONFIG))
    holder = state.TracingHolder()
    registry = metrics.Registry()
    applier = tracing_apply.Applier(holder, service="gw", registry=registry)
    watcher = tracing_file.TracingFileWatcher(path, applier, registry=registry)
    assert await watcher.check() == "applied"
    assert holder.current is not None
    assert (holder.current.revision, holder.current.version) == (7, version)
