"""Tracing an aiohttp service with :mod:`gatetrace.runtime`: a server
middleware and a traced client call. The pattern the README shows for
embedding the runtime in a Python service.
"""

import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from gatetrace import runtime
from gatetrace.runtime.propagation import base as prop_base
from gatetrace.runtime.propagation import composite

__all__ = ["ServiceTracing", "traced_request"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ServiceTracing:
    """A service's tracer and propagator."""

    tracer: runtime.Tracer
    propagator: composite.CompositePropagator

    @classmethod
    def create(
        cls,
        service: str,
        processor: runtime.SpanProcessor | None,
        *,
        formats: tuple[str, ...] = ("tracecontext", "baggage"),
    ) -> "ServiceTracing":
        from gatetrace.runtime.sampling import parentbased, probabilistic

        sampler = parentbased.ParentBasedSampler(probabilistic.ProbabilisticSampler(1.0))
        tracer = runtime.Tracer(
            runtime.Resource(service, (("service.instance.id", f"{service}-1"),)),
            sampler=sampler,
            processor=processor,
        )
        return cls(tracer, composite.build_propagator(list(formats), list(formats)))

    def middleware(self) -> Middleware:
        """A SERVER span per request, parented by the incoming trace context."""
        tracer, propagator = self.tracer, self.propagator
        getter = prop_base.MultiDictGetter()

        @web.middleware
        async def tracing(request: web.Request, handler: Handler) -> web.StreamResponse:
            found = propagator.extract(request.headers, getter)
            parent = found.context
            if parent is None and found.baggage:
                parent = None  # baggage without a trace: a new trace keeps no baggage
            route = request.match_info.route.resource
            template = route.canonical if route is not None else request.path
            span = tracer.start_span(
                f"{request.method} {template}",
                kind=runtime.SpanKind.SERVER,
                parent=parent,
                tags={
                    "http.request.method": request.method,
                    "url.path": request.path,
                    "http.route": template,
                },
            )
            with runtime.use_span(span):
                try:
                    response = await handler(request)
                except web.HTTPException as exc:
                    span.set_tag("http.response.status_code", exc.status)
                    if exc.status >= 500:
                        span.set_status(runtime.StatusCode.ERROR, exc.reason)
                    span.finish()
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_tag("http.response.status_code", 500)
                    span.finish()
                    raise
            span.set_tag("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(runtime.StatusCode.ERROR, f"HTTP {response.status}")
            span.finish()
            return response

        return tracing


async def traced_request(
    tracing: ServiceTracing,
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """A CLIENT span around one HTTP call, with the context injected. Returns
    (status, parsed JSON or text); a failed connection is status 0."""
    parent = runtime.current_span()
    span = tracing.tracer.start_span(
        f"{method} {urllib.parse.urlsplit(url).path or '/'}",
        kind=runtime.SpanKind.CLIENT,
        parent=parent,
        tags={"http.request.method": method, "url.full": url},
    )
    carrier: dict[str, str] = dict(headers or {})
    tracing.propagator.inject(span.context, carrier, prop_base.DictSetter())
    started = time.perf_counter()
    try:
        async with session.request(
            method, url, json=json, headers=carrier, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            body: Any
            if response.content_type == "application/json":
                body = await response.json()
            else:
                body = await response.text()
            span.set_tag("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(runtime.StatusCode.ERROR, f"HTTP {response.status}")
            return response.status, body
    except (aiohttp.ClientError, TimeoutError) as exc:
        span.record_exception(exc)
        return 0, str(exc)
    finally:
        span.set_tag("gatetrace.client.seconds", round(time.perf_counter() - started, 6))
        span.finish()
