"""Making span text encodable: lone surrogates (from ``surrogateescape``-decoded
bytes, or sliced UTF-16 pairs) become U+FFFD, as a UTF-8 decoder would show them.

Only the error path lands here: encoders call ``str.encode()`` first and fall
back to :func:`utf8_replacing` when it raises ``UnicodeEncodeError``.
"""

import re

__all__ = ["utf8_replacing"]

_SURROGATES = re.compile("[\ud800-\udfff]")


def utf8_replacing(text: str) -> bytes:
    """UTF-8 of ``text`` with every lone surrogate replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text).encode()
