"""Secret-looking query parameter values, replaced before a URL is recorded or shown.

One rule for every place a URL leaves the process: the ``url.query`` and ``url.full``
span attributes (OpenTelemetry HTTP conventions: "sensitive content provided in
``url.query`` SHOULD be scrubbed"), and reporter endpoints in logs, errors and the
admin ``GET`` (:func:`gatetrace.policy.messages.redact_url`). A parameter whose *name*
looks like it carries a credential (``api_key``, ``token``, ``X-Amz-Signature``,
``sig``, ``password``, ``session``...) keeps its name and loses its value. Credentials in
the authority (``https://user:pass@host``) become ``REDACTED:REDACTED@`` ("``url.full``
MUST NOT contain credentials").
"""

import re
import urllib.parse
from typing import Final

__all__ = ["REDACTED", "REDACTED_USERINFO", "SECRET_PARAM", "redact_query", "redact_userinfo"]

REDACTED: Final = "<redacted>"
REDACTED_USERINFO: Final = "REDACTED:REDACTED@"
"""What stands for ``user:password@`` (the OpenTelemetry HTTP conventions' spelling)."""
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


def redact_userinfo(url: str) -> str:
    """``url`` with its ``user[:password]@`` replaced by :data:`REDACTED_USERINFO`; the
    same object when it has none."""
    start = url.find("://")
    if start < 0:
        return url
    start += 3
    end = len(url)
    for separator in "/?#":
        found = url.find(separator, start, end)
        if found >= 0:
            end = found
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    return url[:start] + REDACTED_USERINFO + url[at + 1 :]
