"""Request paths as the proxy routes and forwards them: dot-segments removed.

RFC 3986 §5.2.4 removes ``.`` and ``..`` segments; an upstream (or anything between)
that does it after the gateway has matched a route would send ``/strip/../../escape``
somewhere the route never allowed. So the gateway does it first, on the raw
(percent-encoded) path, and routes and forwards the result:

- a segment that is ``.`` or ``..`` once ``%2e``/``%2E`` are decoded is a dot-segment
  (``.%2e``, ``%2E%2e``...); nothing else is decoded, so ``%2f`` stays an opaque
  part of its segment and ``..%2f`` is not a dot-segment;
- a ``..`` with nothing left to remove would climb above ``/``: such a path is
  refused (:data:`CLIMBS`), never silently clamped to ``/``;
- how far the ``..`` segments climbed is reported (:class:`Normalized` ``floor``), so
  the route table can refuse a path whose ``..`` leaves or enters a route's prefix;
- ``\\`` and ``;`` are no separators in RFC 3986, so ``..\\x`` and ``..;x`` are
  ordinary segments; but Windows servers read ``\\`` as ``/`` and servlet
  containers drop ``;parameters`` before removing dot-segments, and would climb
  where the gateway did not: a segment that such a reading turns into ``..`` is
  refused (:data:`AMBIGUOUS`) rather than forwarded;
- a trailing dot-segment leaves a trailing ``/`` (``/a/b/..`` is ``/a/``), as the RFC says.

Paths with no segment starting with ``.`` or ``%2`` and no ``\\`` (nearly all, even
``/x.json``) are returned as they are after three ``in`` tests (:func:`plain`).
"""

from dataclasses import dataclass
from typing import Final

__all__ = [
    "AMBIGUOUS",
    "CLIMBS",
    "NO_CLIMB",
    "Normalized",
    "PathRefusedError",
    "normalize",
    "plain",
    "remove_dot_segments",
]

CLIMBS: Final = "the path climbs above the root with '..' segments"
AMBIGUOUS: Final = (
    "a segment with '\\' or ';' in it is not a dot-segment in RFC 3986 but read as '..' "
    "by some servers"
)
NO_CLIMB: Final = 1 << 30
""":attr:`Normalized.floor` of a path without ``..`` segments."""


class PathRefusedError(ValueError):
    """The request path cannot be routed safely; the message says why (for a 400)."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """A raw path without dot-segments, and how far its ``..`` segments climbed."""

    path: str
    floor: int
    """The fewest segments left when a ``..`` removed one (:data:`NO_CLIMB` if none
    did): a ``..`` reached into the first ``n`` segments of the path iff ``floor < n``."""


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


def _ambiguous(segment: str) -> bool:
    """Whether ``segment`` (not a dot-segment) is ``..`` to a server that splits on
    ``\\`` or drops ``;parameters``."""
    return any(_dot_kind(piece.split(";", 1)[0]) == 2 for piece in segment.split("\\"))


def plain(raw_path: str) -> bool:
    """Whether ``raw_path`` surely has no dot-segment, nor a segment some servers read as
    one: none starts with ``.`` or ``%2`` (``/x.json`` is plain), and no ``\\``."""
    return "/." not in raw_path and "/%2" not in raw_path and "\\" not in raw_path


def _remove(raw_path: str, *, strict: bool) -> Normalized | None:
    if plain(raw_path):
        return Normalized(raw_path, NO_CLIMB)
    segments = raw_path.split("/")
    if segments[0] != "":  # not absolute (``*``, or an absolute-form target): left alone
        return Normalized(raw_path, NO_CLIMB)
    out: list[str] = []
    floor = NO_CLIMB
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
            floor = min(floor, len(out))
            continue
        if strict and ("\\" in segment or ";" in segment) and _ambiguous(segment):
            raise PathRefusedError(AMBIGUOUS)
        out.append(segment)
    path = "/" + "/".join(out)
    if trailing and not path.endswith("/"):
        path += "/"
    return Normalized(path, floor)


def normalize(raw_path: str) -> Normalized:
    """``raw_path`` without dot-segments; :class:`PathRefusedError` if it climbs above ``/``
    or has a segment that some servers would read as ``..``."""
    normalized = _remove(raw_path, strict=True)
    if normalized is None:
        raise PathRefusedError(CLIMBS)
    return normalized


def remove_dot_segments(raw_path: str) -> str | None:
    """``raw_path`` without dot-segments (RFC 3986 alone), or None if it would climb
    above ``/``."""
    normalized = _remove(raw_path, strict=False)
    return None if normalized is None else normalized.path
