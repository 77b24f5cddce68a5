"""Secret-looking query parameter values, replaced before a URL is recorded or shown.

One rule for every place a URL leaves the process: the ``url.query`` and ``url.full``
span attributes (OpenTelemetry HTTP conventions: "sensitive content provided in
``url.query`` SHOULD be scrubbed"), and reporter endpoints in logs, errors and the
admin ``GET`` (:func:`gatetrace.policy.messages.redact_url`). A parameter whose *name*
looks like it carries a credential (``api_key``, ``token``, ``X-Amz-Signature``,
``sig``, ``password``, ``session``...) keeps its name and loses its value.
"""

import re
import urllib.parse
from typing import Final

__all__ = ["REDACTED", "SECRET_PARAM", "redact_query"]

REDACTED: Final = "<redacted>"
SECRET_PARAM: Final = re.compile(
    r"key|token|secret|passw|pwd|auth|signature|sig$|credential|session|cookie|jwt|bearer",
    re.IGNORECASE,
)
"""Query parameter names that look like they carry a credential."""


def redact_query(query: str) -> str:
    """``query`` (without ``?``) with the values of secret-looking parameters replaced by
    :data:`REDACTED`; separators, order and every other byte kept as they were."""
    if "=" not in query:
        return query
    pairs = []
    changed = False
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        if eq and SECRET_PARAM.search(urllib.parse.unquote_plus(name)):
            pair = name + eq + REDACTED
            changed = True
        pairs.append(pair)
    return "&".join(pairs) if changed else query
