"""A kit-managed service's admin port: the gateway's tracing/probe/metrics endpoints plus
the retro endpoint.

::

    GET/PUT /admin/v1/tracing, /healthz, /readyz, /metrics    as on a gateway (:mod:`.admin`)
    POST /retro/v1/traces/{traceId}   {"reason": "error"}  -> 200 {traceId, spans}
                                      400 bad trace id or body

The operator manages the service pod exactly like a gateway pod: a TracingPolicy selects
it by its labels and the operator PUTs the effective config here. The same bearer token
guards everything but the probes and ``/metrics``.
"""

import json
import socket
from typing import Final

from aiohttp import web

from gatetrace.embed import admin as _admin
from gatetrace.embed import auth as _auth
from gatetrace.embed import keep as _keep
from gatetrace.embed import kit as _kit
from gatetrace.runtime import ids

__all__ = ["KIT", "AdminServer", "make_admin_app"]

KIT: Final = web.AppKey("gatetrace_kit", _kit.Kit)
_WILDCARDS: Final = frozenset({"0.0.0.0", "", "::"})
_MAX_REASON: Final = 64
_MAX_KEEP_BODY: Final = 4096


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def keep_trace(request: web.Request) -> web.Response:
    """``POST /retro/v1/traces/{traceId}``: export that trace's buffered spans."""
    text = request.match_info["trace_id"]
    trace_id = ids.parse_trace_id(text) if len(text) == 32 and text.islower() else None
    if trace_id is None:
        return _bad(f"trace id {text[:40]!r}: expected 32 lowercase hex digits, not all zero")
    body = await request.read() if request.can_read_body else b""
    if len(body) > _MAX_KEEP_BODY:
        return _bad(f"body exceeds {_MAX_KEEP_BODY} bytes")
    reason = "kept"
    if body:
        try:
            document = json.loads(body)
        except ValueError as e:
            return _bad(f"body: not JSON ({e})")
        found = document.get("reason") if isinstance(document, dict) else None
        if not isinstance(found, str) or not 0 < len(found) <= _MAX_REASON:
            return _bad(f"body.reason: expected a string of 1-{_MAX_REASON} characters")
        reason = found
    spans = request.app[KIT].keep(trace_id, reason)
    return web.json_response({"traceId": text, "spans": spans})


def make_admin_app(kit: _kit.Kit) -> web.Application:
    """The admin app of ``kit``'s service."""
    app = web.Application(
        middlewares=[_admin.request_metrics(kit.registry), _auth.bearer_auth(kit.token)],
        client_max_size=_admin.DEFAULT_MAX_BODY_BYTES,
    )
    app[KIT] = kit
    _admin.add_tracing_routes(app, kit.holder, kit.applier, [kit.registry])
    app.router.add_post(_keep.KEEP_PATH, keep_trace)
    return app


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class AdminServer:
    """Runs ``kit``'s admin app on ``host:port`` (port 0: any free one)."""

    def __init__(self, kit: _kit.Kit, host: str = "0.0.0.0", port: int = 9901) -> None:
        self.kit = kit
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where this process reaches the admin port."""
        host = "127.0.0.1" if self.host in _WILDCARDS else self.host
        return f"http://{_bracketed(host)}:{self.port}"

    def advertised(self) -> str:
        """Where other pods reach it: the bound address, or for a wildcard bind the address
        this host's name resolves to (a pod's own IP in Kubernetes), else loopback."""
        host = self.host
        if host in _WILDCARDS:
            try:
                host = socket.gethostbyname(socket.gethostname())
            except OSError:
                host = "127.0.0.1"
        return f"http://{_bracketed(host)}:{self.port}"

    async def start(self) -> None:
        """Bind; the kit's retro address defaults to this URL."""
        runner = web.AppRunner(make_admin_app(self.kit), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if not self.kit.address:
            self.kit.address = self.advertised()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
