"""Sampling at the gateway: error/latency priority, namespace overrides, rules."""

import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator, Mapping

from proxyharness import RecordingProcessor, Stack, make_active, start_stack

from gatetrace.gateway import state
from gatetrace.runtime import span
from gatetrace.runtime.sampling import base as sampling
from gatetrace.runtime.sampling import const, priority, rules

SERVER, CLIENT = span.SpanKind.SERVER, span.SpanKind.CLIENT
SLOW_NS = 150_000_000


class _FrozenClock:
    """A clock that never moves: the budget never refills during a test."""

    def __call__(self) -> float:
        return 1000.0


@contextlib.asynccontextmanager
async def _priority_stack(
    *, errors: bool = True, budget_per_second: float = 100.0, refill: bool = True
) -> AsyncIterator[Stack]:
    collector = RecordingProcessor()
    clock = None if refill else _FrozenClock()
    sampler = priority.PrioritySampler(
        const.ConstSampler(False), priority.PriorityBudget(budget_per_second, clock=clock)
    )
    active = make_active(
        collector,
        sampler=sampler,
        priority=state.PrioritySettings(errors=errors, slower_than_ns=SLOW_NS),
    )
    async with start_stack(active, collector) as stack:
        yield stack


async def test_fast_successful_request_is_not_exported_and_propagates_unsampled() -> None:
    async with _priority_stack() as stack:
        resp, _ = await stack.get("/api/users/1")
        assert resp.status == 200
        assert stack.gateway.spans == []
        traceparent = stack.users.received[-1].header("traceparent") or ""
        assert traceparent.endswith("-00") or traceparent.endswith("-02")


async def test_a_500_upgrades_the_pending_trace() -> None:
    async with _priority_stack() as stack:
        resp, _ = await stack.get("/api/users/status?code=500")
        assert resp.status == 500
        server = stack.gateway.one(SERVER)
        client = stack.gateway.one(CLIENT)
        assert server.sampled
        assert client.sampled
        assert server.tags["sampling.priority.reason"] == "error"
        assert client.parent_id == server.span_id
        assert server.tags["http.response.status_code"] == 500
        # written only once the upgrade kept the trace, with the same values as ever
        assert server.tags["url.path"] == "/api/users/status"
        assert server.tags["http.route"] == "/api/users"
        assert server.tags["network.peer.address"] == "127.0.0.1"
        assert server.tags["network.protocol.version"] == "1.1"
        assert server.tags["gatetrace.upstream.namespace"] == "shop"
        assert client.tags["url.full"].endswith("/api/users/status?code=500")
        assert client.tags["http.request.method"] == "GET"
        assert client.tags["gatetrace.route"] == "users"
        assert client.tags["http.response.status_code"] == 500
        assert client.is_error and client.tags["error.type"] == "500"
        # the client span built after the upgrade has the id the upstream was given
        traceparent = stack.users.received[-1].header("traceparent") or ""
        assert traceparent.split("-")[1:3] == [
            client.context.trace_id_hex,
            f"{client.span_id:016x}",
        ]
        assert server.start_ns <= client.start_ns <= (client.end_ns or 0) <= (server.end_ns or 0)


async def test_an_upstream_failure_upgrades_the_pending_trace() -> None:
    async with _priority_stack() as stack:
        resp, _ = await stack.get("/down/x")
        assert resp.status == 502
        server = stack.gateway.one(SERVER)
        assert server.tags["sampling.priority.reason"] == "error"
        assert server.tags["error.type"] == "ClientConnectorError"
        client = stack.gateway.one(CLIENT)
        assert client.parent_id == server.span_id and client.is_error
        assert client.tags["error.type"] == "ClientConnectorError"
        assert "http.response.status_code" not in client.tags
        assert [log.fields["exception.type"] for log in client.logs] == [
            "aiohttp.client_exceptions.ClientConnectorError"
        ]
        assert server.start_ns <= client.logs[0].timestamp_ns <= (server.end_ns or 0)


async def test_a_kept_trace_has_its_client_span_and_a_discarded_one_builds_none() -> None:
    async with _priority_stack() as stack:
        resp, _ = await stack.get("/api/users/1")
        assert resp.status == 200
        metrics = stack.holder.current.tracer.metrics if stack.holder.current else None
        assert metrics is not None
        assert metrics.started.value(("true",)) == 1  # the server span only
        resp, _ = await stack.get("/api/users/status?code=503")
        assert [s.kind for s in stack.gateway.spans] == [CLIENT, SERVER]
        assert metrics.started.value(("true",)) == 3


async def test_a_slow_upstream_upgrades_the_pending_trace() -> None:
    async with _priority_stack() as stack:
        resp, _ = await stack.get("/api/users/slow?ms=250")
        assert resp.status == 200
        server = stack.gateway.one(SERVER)
        assert server.tags["sampling.priority.reason"] == "slow"
        assert not server.is_error
        assert len(stack.gateway.spans) == 2


async def test_errors_are_not_upgraded_when_error_priority_is_off() -> None:
    async with _priority_stack(errors=False) as stack:
        await stack.get("/api/users/status?code=500")
        assert stack.gateway.spans == []


async def test_upgrades_stop_when_the_budget_is_spent() -> None:
    async with _priority_stack(budget_per_second=1.0, refill=False) as stack:
        await stack.get("/api/users/status?code=500")
        await stack.get("/api/users/status?code=500")
        assert len(stack.gateway.by_kind(SERVER)) == 1


@contextlib.asynccontextmanager
async def _override_stack(
    default: bool, overrides: Mapping[str, sampling.Sampler]
) -> AsyncIterator[Stack]:
    collector = RecordingProcessor()
    active = make_active(
        collector, sampler=const.ConstSampler(default), namespace_samplers=overrides
    )
    async with start_stack(active, collector) as stack:
        yield stack


async def test_namespace_override_applies_only_to_its_routes() -> None:
    async with _override_stack(True, {"billing": const.ConstSampler(False)}) as stack:
        await stack.get("/api/billing/1")
        assert stack.gateway.spans == []
        billing_tp = stack.users.received[-1].header("traceparent") or ""
        assert billing_tp[-2:] in ("00", "02")
        await stack.get("/api/users/1")
        assert stack.gateway.one(SERVER).tags["gatetrace.upstream.namespace"] == "shop"
        users_tp = stack.users.received[-1].header("traceparent") or ""
        assert users_tp[-2:] in ("01", "03")


async def test_namespace_override_can_sample_what_the_default_drops() -> None:
    async with _override_stack(False, {"shop": const.ConstSampler(True)}) as stack:
        await stack.get("/api/users/1")
        await stack.get("/api/billing/1")
        await stack.get("/strip/me/x")  # no namespace: the default sampler
        servers = stack.gateway.by_kind(SERVER)
        assert [s.tags["gatetrace.route"] for s in servers] == ["users"]
        assert servers[0].tags["gatetrace.sampler.type"] == "const"


async def test_rules_see_the_request_method_path_and_route() -> None:
    rule = rules.SamplingRule(
        rules.RuleMatch.create(path_prefix="/api/users/pay", methods=["POST"]),
        const.ConstSampler(True),
        "payments",
    )
    collector = RecordingProcessor()
    active = make_active(
        collector, sampler=rules.RuleBasedSampler([rule], const.ConstSampler(False))
    )
    async with start_stack(active, collector) as stack:
        await stack.get("/api/users/pay")
        async with stack.client.post("/api/users/pay", data=b"{}") as resp:
            assert resp.status == 200
        servers = stack.gateway.by_kind(SERVER)
        assert len(servers) == 1
        assert servers[0].tags["http.request.method"] == "POST"


class _Recording:
    """A sampler that keeps the parameters it was asked about."""

    def __init__(self) -> None:
        self.seen: list[sampling.SamplingParams] = []

    def should_sample(self, params: sampling.SamplingParams) -> sampling.SamplingResult:
        self.seen.append(params)
        return sampling.SamplingResult(sampling.Decision.SAMPLE, "recording", True)

    def describe(self) -> str:
        return "recording"


async def test_sampler_gets_request_info_and_the_remote_parent() -> None:
    sampler = _Recording()
    collector = RecordingProcessor()
    async with start_stack(make_active(collector, sampler=sampler), collector) as stack:
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await stack.get("/api/users/42?x=1", headers={"traceparent": parent, "X-Flag": "on"})
        assert len(sampler.seen) == 1  # only the local root asks the sampler
        params = sampler.seen[0]
        assert params.kind is SERVER
        assert params.operation == "GET /api/users"
        assert params.parent is not None
        assert params.parent.span_id_hex == "00f067aa0ba902b7"
        assert params.request is not None
        assert params.request.method == "GET"
        assert params.request.path == "/api/users/42"
        assert params.request.route == "users"
        assert params.request.headers["x-flag"] == "on"


async def test_b3_deny_without_ids_is_honoured() -> None:
    """``b3: 0`` carries a decision but no trace: the new trace is not sampled."""
    from gatetrace.runtime.sampling import debug, parentbased

    collector = RecordingProcessor()
    sampler = debug.DebugSampler(parentbased.ParentBasedSampler(const.ConstSampler(True)))
    active = make_active(collector, sampler=sampler, extract=("b3", "tracecontext"))
    async with start_stack(active, collector) as stack:
        resp, _ = await stack.get("/api/users/1", headers={"b3": "0"})
        assert resp.status == 200
        assert stack.gateway.spans == []
        resp, _ = await stack.get("/api/users/1", headers={"b3": "d"})
        assert stack.gateway.one(SERVER).context.debug
        assert stack.gateway.one(SERVER).parent_id is None


async def test_a_namespace_override_brings_its_own_priority_settings() -> None:
    collector = RecordingProcessor()
    budget = priority.PriorityBudget(100.0)
    sampler = priority.PrioritySampler(const.ConstSampler(False), budget)
    active = make_active(
        collector,
        sampler=sampler,
        priority=state.PrioritySettings(errors=False),
        namespace_samplers={"shop": sampler},
    )
    active = dataclasses.replace(
        active, namespace_priority={"shop": state.PrioritySettings(errors=True)}
    )
    async with start_stack(active, collector) as stack:
        resp, _ = await stack.get("/api/billing/status?code=500")  # namespace billing
        assert resp.status == 500
        assert stack.gateway.spans == []
        resp, _ = await stack.get("/api/users/status?code=500")  # routed to namespace shop
        assert resp.status == 500
        assert stack.gateway.one(SERVER).tags["sampling.priority.reason"] == "error"


async def test_a_dropped_trace_builds_no_spans_yet_propagates_and_answers_its_id() -> None:
    collector = RecordingProcessor()
    active = make_active(collector, sampler=const.ConstSampler(False))
    async with start_stack(active, collector) as stack:
        incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
        resp, _ = await stack.get(
            "/api/users/1",
            headers={"traceparent": incoming, "baggage": "tenant=acme", "b3": "1-2-1"},
        )
        assert resp.status == 200
        upstream = stack.users.received[-1]
        traceparent = upstream.header("traceparent") or ""
        version, trace_id, span_id, flags = traceparent.split("-")
        assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "00")
        assert span_id not in ("b7ad6b7169203331", "0" * 16)
        assert upstream.header("baggage") == "tenant=acme"
        assert upstream.header("b3") is None  # stale formats are stripped as for sampled ones
        assert resp.headers["X-Trace-Id"] == trace_id
        # a new trace, an upstream failure and no route: the id comes back every time
        for path, status in (("/api/users/2", 200), ("/down/x", 502), ("/nowhere", 404)):
            resp, _ = await stack.get(path)
            assert resp.status == status
            assert len(resp.headers["X-Trace-Id"]) == 32
        assert collector.spans == []
        counters = active.tracer.metrics
        assert counters.started.value(("false",)) == 4
        assert counters.finished.value(("not_sampled",)) == 4
        assert counters.started.value(("true",)) == 0


async def test_pending_traces_leave_no_reference_cycles_behind() -> None:
    # A cycle per request (request -> its observer -> request) made every young-generation
    # collection walk thousands of objects; reference counting must free it all.
    async with _priority_stack() as stack:
        for _ in range(3):  # warm: pools, caches
            await stack.get("/api/users/1")
        gc.collect()
        gc.disable()
        try:
            for _ in range(20):
                resp, _ = await stack.get("/api/users/1")
                assert resp.status == 200
            found = gc.collect()
        finally:
            gc.enable()
        assert found == 0


async def _client_span_for(path: str, *, pending: bool) -> span.Span:
    collector = RecordingProcessor()
    sampler: sampling.Sampler = const.ConstSampler(True)
    if pending:
        sampler = priority.PrioritySampler(const.ConstSampler(False), priority.PriorityBudget(1e3))
    active = make_active(collector, sampler=sampler, priority=state.PrioritySettings(errors=True))
    async with start_stack(active, collector) as stack:
        with contextlib.suppress(Exception):  # the cut body fails the client's read
            await stack.get(path)
        return stack.gateway.one(CLIENT)


async def test_a_deferred_client_span_is_the_span_a_sampled_trace_gets() -> None:
    for path in ("/api/users/status?code=500", "/down/x", "/api/users/cut"):
        sampled = await _client_span_for(path, pending=False)
        rebuilt = await _client_span_for(path, pending=True)
        ports = {"server.port", "url.full"}  # each stack's upstream has its own port
        assert ports <= rebuilt.tags.keys()
        assert {k: v for k, v in rebuilt.tags.items() if k not in ports} == {
            k: v for k, v in sampled.tags.items() if k not in ports
        }, path
        assert rebuilt.status == sampled.status, path
        assert [log.fields for log in rebuilt.logs] == [log.fields for log in sampled.logs], path
        assert (rebuilt.name, rebuilt.kind) == (sampled.name, sampled.kind)
