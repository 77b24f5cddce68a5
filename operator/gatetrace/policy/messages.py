"""Rendering client- and author-supplied values into error messages, bounded.

Imports nothing of the project, so every module that raises (the wire
validators, the models, the gateway config, the admin API) can use it.
"""

import json
import re
import reprlib
import urllib.parse
from typing import Any

from gatetrace.runtime import url_redaction as _url_redaction

__all__ = [
    "ECHO_LIMIT",
    "MAX_JSON_DEPTH",
    "REDACTED",
    "echo",
    "echo_url",
    "load_json",
    "redact_url",
    "shorten_quotes",
]

MAX_JSON_DEPTH = 64
"""How deeply a JSON document from a client may nest (a tracing config needs < 10)."""

ECHO_LIMIT = 120
"""How many characters of an offending value an error message repeats."""

REDACTED = _url_redaction.REDACTED
"""What a hidden secret is shown as."""


_CONTAINERS = reprlib.Repr()  # keyword arguments only from Python 3.12
_CONTAINERS.maxlevel = 3
_CONTAINERS.maxdict = _CONTAINERS.maxlist = _CONTAINERS.maxtuple = _CONTAINERS.maxset = 8
_CONTAINERS.maxstring = _CONTAINERS.maxother = _CONTAINERS.maxlong = 40


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters.

    Values in error messages come from clients and policy authors: a 10 MB
    string or a deeply nested structure must not become a 10 MB log line (or
    a ``RecursionError`` in ``repr``). Strings are cut before ``repr`` so the
    cost is bounded too; other values are rendered only when they are small.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        cut = f"... ({len(value)} bytes)" if len(value) > limit else ""
        return f"{bytes(value[:limit])!r}{cut}"
    if isinstance(value, dict | list | tuple | set | frozenset):
        # reprlib bounds depth, items and string lengths; the result is cut once more
        text = _CONTAINERS.repr(value)
        return text if len(text) <= 2 * limit else f"{text[: 2 * limit]}..."
    return f"a {type(value).__name__}"


_LONG_QUOTE = re.compile("'([^']{" + str(ECHO_LIMIT) + "})[^']+'")


def shorten_quotes(message: str) -> str:
    """A third-party message (pydantic's) with every quoted value cut to ``ECHO_LIMIT``."""
    if len(message) <= 2 * ECHO_LIMIT:
        return message
    return _LONG_QUOTE.sub(r"'\1...'", message)


def _depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` containers (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a client's JSON; raise ``ValueError`` saying what is wrong (not UTF-8, not
    JSON with line and column, nesting deeper than ``max_depth``), never ``RecursionError``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 (byte {e.start})") from e
    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError(f"nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    if _depth(document, max_depth):
        raise ValueError(f"nests deeper than {max_depth} levels")
    return document


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the values of secret-looking query parameters
    replaced by :data:`REDACTED` (an endpoint such as ``https://u:p@host/v1?api_key=..``)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = _url_redaction.redact_query(parts.query)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def echo_url(value: str, limit: int = ECHO_LIMIT) -> str:
    """:func:`echo` of a URL that may carry credentials (a reporter endpoint): its
    userinfo and secret-looking query values never reach a message."""
    return echo(redact_url(value), limit)
