"""Rendering client- and author-supplied values into error messages, bounded.

Imports nothing of the project, so every module that raises (the wire
validators, the models, the gateway config, the admin API) can use it.
"""

import re
import reprlib

__all__ = ["ECHO_LIMIT", "echo", "shorten_quotes"]

ECHO_LIMIT = 120
"""How many characters of an offending value an error message repeats."""


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
