"""Request paths as the proxy routes and forwards them: dot-segments removed.

RFC 3986 §5.2.4 removes ``.`` and ``..`` segments; an upstream (or anything between)
that does it after the gateway has matched a route would send ``/strip/../../escape``
somewhere the route never allowed. So the gateway does it first, on the raw
(percent-encoded) path, and routes and forwards the result:

- a segment that is ``.`` or ``..`` once ``%2e``/``%2E`` are decoded is a dot-segment
  (``.%2e``, ``%2E%2e``...); nothing else is decoded, so ``%2f`` stays an opaque
  part of its segment and ``..%2f`` is not a dot-segment;
- a ``..`` with nothing left to remove would climb above ``/``: such a path gets
  400 (:data:`CLIMBS`), never a silently clamped ``/``;
- a trailing dot-segment leaves a trailing ``/`` (``/a/b/..`` is ``/a/``), as the RFC says.

Paths without a ``.`` in them (nearly all) are returned as they are, at the cost of
one ``in`` test.
"""

from typing import Final

__all__ = ["CLIMBS", "remove_dot_segments"]

CLIMBS: Final = "the path climbs above the root with '..' segments"


def _dot_kind(segment: str) -> int:
    """1 for ``.``, 2 for ``..`` (``%2e`` counting as a dot), 0 for any other segment."""
    if len(segment) > 6 or not segment:
        return 0
    text = segment.replace("%2e", ".").replace("%2E", ".")
    if text == ".":
        return 1
    if text == "..":
        return 2
    return 0


def remove_dot_segments(raw_path: str) -> str | None:
    """``raw_path`` without dot-segments, or None if it would climb above ``/``."""
    if "." not in raw_path and "%2" not in raw_path:
        return raw_path
    segments = raw_path.split("/")
    if segments[0] != "":  # not absolute (``*``, or an absolute-form target): left alone
        return raw_path
    out: list[str] = []
    trailing = False
    for segment in segments[1:]:
        kind = _dot_kind(segment)
        trailing = kind != 0
        if kind == 1:
            continue
        if kind == 2:
            if not out:
                return None
            out.pop()
            continue
        out.append(segment)
    path = "/" + "/".join(out)
    if trailing and not path.endswith("/"):
        path += "/"
    return path
