"""The gateway's side of retroactive collection (:mod:`gatetrace.embed.pending`,
:mod:`gatetrace.embed.breadcrumbs`, :mod:`gatetrace.embed.keep`).

- :func:`incoming`: a client's ``gt`` tracestate member is removed (only the gateway
  marks a trace pending);
- :func:`outgoing`: a pending trace goes upstream with ``sampled=0`` and ``gt=p``;
- :func:`collect`: the upstream's breadcrumb header is read (for a pending trace) and
  always removed from the answer to the client;
- :func:`keep`: a kept (upgraded) trace's breadcrumbs are asked to export it.

The proxy never forwards a client's breadcrumb header upstream (``proxy._REQUEST_DROP``).
"""

from collections.abc import Sequence
from typing import Final

import multidict

from gatetrace.embed import breadcrumbs as _breadcrumbs
from gatetrace.embed import keep as _keep
from gatetrace.embed import pending as _pending
from gatetrace.embed import state
from gatetrace.runtime import spancontext as _sc

__all__ = ["HEADER", "collect", "incoming", "keep", "outgoing"]

HEADER: Final = _breadcrumbs.HEADER


def incoming(context: _sc.SpanContext) -> _sc.SpanContext:
    """An extracted context without any ``gt`` member a client sent."""
    return _pending.unmarked(context) if context.trace_state else context


def outgoing(active: state.ActiveTracing, context: _sc.SpanContext) -> _sc.SpanContext:
    """The context a pending trace is sent upstream with."""
    return _pending.marked(context) if active.retro.enabled else context


def collect(
    active: state.ActiveTracing, headers: multidict.CIMultiDict[str], pending: bool
) -> Sequence[str]:
    """The upstream answer's breadcrumbs (only for a pending trace), removed from it."""
    values = headers.popall(HEADER, ())
    if not pending or not values or not active.retro.enabled:
        return ()
    found, _refused = _breadcrumbs.parse(values, active.retro.max_breadcrumbs)
    return found


def keep(
    keeper: _keep.Keeper | None,
    active: state.ActiveTracing,
    trace_id: int,
    reason: str,
    addresses: Sequence[str],
) -> None:
    """Ask each breadcrumb (within the allowed networks) to export the kept trace."""
    if keeper is not None and addresses and active.retro.enabled:
        keeper.keep(trace_id, reason, addresses, active.retro)
