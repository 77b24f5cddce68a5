"""The Jaeger remote sampling API, served from the TracingPolicies the operator holds.

``GET /sampling?service=NAME`` (the agent form) and ``GET /api/sampling?service=NAME``
(the collector form) answer Jaeger's ``SamplingStrategyResponse`` JSON, exactly as
Jaeger does, for ``spec.services`` (:mod:`gatetrace.policy.services`). Every replica
serves it: reading needs no leadership. Answers carry an ``ETag``; a poller sending it
back in ``If-None-Match`` gets a bodiless 304 until a policy change alters its strategy,
and ``Cache-Control: no-cache`` tells caches to ask each time (cheaply).
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from gatetrace.operator import plan as _plan
from gatetrace.operator import records_model as _records_model
from gatetrace.policy import model as _model
from gatetrace.policy import services as _services

__all__ = ["PolicyView", "StrategyServer", "sources_of"]

_CACHE_CONTROL = "no-cache"

RUNNER_ARGS: dict[str, int] = {"max_line_size": 16_384}
"""Request lines up to 16 KiB reach the handler (aiohttp's default stops at 8 KiB), so a
too-long service name gets this API's own 400 naming the limit."""


class PolicyView(Protocol):
    """Where the policies come from: the reconciler, or a replica's own watch."""

    @property
    def policies(self) -> Mapping[_plan.PolicyRef, _records_model.PolicyRecord]: ...

    @property
    def policy_epoch(self) -> int:
        """Grows whenever a policy is added, changed or removed."""
        ...


@dataclass(frozen=True, slots=True)
class _Answer:
    body: bytes
    etag: str


def _answer(entry: _services.ServiceSampling) -> _Answer:
    body = json.dumps(_services.strategy_response(entry), separators=(",", ":")).encode()
    return _Answer(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


def sources_of(
    policies: Mapping[_plan.PolicyRef, _records_model.PolicyRecord],
    root_namespace: str,
    cache: dict[tuple[str, str, int], _services.StrategySource] | None = None,
) -> list[_services.StrategySource]:
    """The in-force generation of every policy, as the strategy book reads it."""
    found: list[_services.StrategySource] = []
    for record in policies.values():
        in_force = record.in_force()
        if in_force is None:
            continue
        key = (in_force.ref.key, in_force.created, in_force.generation)
        source = cache.get(key) if cache is not None else None
        if source is None:
            try:
                source = _source(in_force, root_namespace)
            except ValueError:  # pydantic's ValidationError: checked on the way in already
                continue
            if cache is not None:
                cache[key] = source
        found.append(source)
    return found


def _source(record: _records_model.PolicyRecord, root_namespace: str) -> _services.StrategySource:
    spec = _model.TracingPolicySpec.model_validate(record.body.get("spec") or {})
    ref = record.ref
    return _services.source_from_spec(ref.namespace, ref.name, record.created, spec, root_namespace)


def _matches(etag: str, headers: list[str]) -> bool:
    """RFC 9110 13.1.2: If-None-Match is a list of (weak or strong) tags, or ``*``."""
    for header in headers:
        for tag in header.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == etag:
                return True
    return False


class StrategyServer:
    """The book of strategies, rebuilt when the view's epoch moves, and its HTTP routes."""

    def __init__(self, view: PolicyView, root_namespace: str) -> None:
        self.view = view
        self.root_namespace = root_namespace
        self._epoch = -1
        self._book = _services.StrategyBook()
        self._answers: dict[str, _Answer] = {}
        self._fallback = _answer(self._book.fallback.entry)
        self._parsed: dict[tuple[str, str, int], _services.StrategySource] = {}

    def book(self) -> _services.StrategyBook:
        """The current book (rebuilt at most once per policy change)."""
        epoch = self.view.policy_epoch
        if epoch != self._epoch:
            sources = sources_of(self.view.policies, self.root_namespace, self._parsed)
            live = {(s.key, s.created) for s in sources}
            self._parsed = {k: v for k, v in self._parsed.items() if (k[0], k[1]) in live}
            self._book = _services.StrategyBook.build(sources)
            self._answers = {
                name: _answer(chosen.entry) for name, chosen in self._book.chosen.items()
            }
            self._fallback = _answer(self._book.fallback.entry)
            self._epoch = epoch
        return self._book

    def answer_for(self, service: str) -> _Answer:
        self.book()
        return self._answers.get(service) or self._fallback

    async def handle(self, request: web.Request) -> web.StreamResponse:
        services = request.query.getall("service", [])
        if len(services) != 1 or not services[0]:
            raise web.HTTPBadRequest(text="'service' parameter must be provided once\n")
        service = services[0]
        if len(service) > _services.MAX_SERVICE_NAME:
            raise web.HTTPBadRequest(
                text=f"'service' is {len(service)} characters, the limit is "
                f"{_services.MAX_SERVICE_NAME}\n"
            )
        answer = self.answer_for(service)
        headers = {"ETag": answer.etag, "Cache-Control": _CACHE_CONTROL}
        if _matches(answer.etag, request.headers.getall("If-None-Match", [])):
            return web.Response(status=304, headers=headers)
        return web.Response(body=answer.body, content_type="application/json", headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/sampling", "/api/sampling"):
            app.router.add_get(path, self.handle)
        return app
