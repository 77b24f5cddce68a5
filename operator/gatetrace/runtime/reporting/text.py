"""Making span text encodable: lone surrogates (from ``surrogateescape``-decoded
bytes, or sliced UTF-16 pairs) become U+FFFD, as a UTF-8 decoder would show them.

Only the error path lands here: encoders call ``str.encode()`` first and fall
back to :func:`utf8_replacing` when it raises ``UnicodeEncodeError``. Likewise
:func:`int_text` for ints too long for decimal text.
"""

import re

__all__ = ["int_text", "utf8_replacing"]

_SURROGATES = re.compile("[\ud800-\udfff]")


def utf8_replacing(text: str) -> bytes:
    """UTF-8 of ``text`` with every lone surrogate replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text).encode()


def int_text(value: int) -> str:
    """``value`` in decimal, or in hex (``0x...``) when it has more digits than CPython
    converts to decimal (``sys.get_int_max_str_digits()``, 4,300 by default: ``str()``
    raises ``ValueError`` beyond it)."""
    try:
        return int.__repr__(value)
    except ValueError:
        return hex(value)
