"""Shared building blocks of the wire models: the base class and constrained types.

Python attributes are snake_case; the wire (YAML, JSON, the CRD) uses the
camelCase aliases, and both are accepted on input.  Models are frozen and
forbid unknown fields, so a typo is an error that names the field.  Strict
mode keeps YAML from smuggling ``"yes"`` into a boolean or ``1`` into a string.
"""

import re
import urllib.parse
from typing import Annotated, Any

import pydantic
from pydantic import alias_generators

from gatetrace.policy import messages as _messages

_HTTP_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class WireModel(pydantic.BaseModel):
    """Base of every TracingPolicy model: camelCase on the wire, frozen, strict, closed."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        regex_engine="python-re",
    )


def _check_http_url(value: object) -> object:
    if not isinstance(value, str):
        return value  # the type check reports it
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        raise ValueError(
            f"endpoint must be an http:// or https:// URL, got {_messages.echo_url(value)}"
        )
    if not parts.hostname:
        raise ValueError(f"endpoint has no host: {_messages.echo_url(value)}")
    try:
        _ = parts.port
    except ValueError as e:
        raise ValueError(f"endpoint has a bad port: {_messages.echo_url(value)}") from e
    return value


def _check_http_token(value: object) -> object:
    if not isinstance(value, str):
        return value
    if not _HTTP_TOKEN.match(value):
        raise ValueError(f"not a valid HTTP header name: {_messages.echo(value)}")
    return value.lower()


def _check_dns_label(value: object) -> object:
    if not isinstance(value, str):
        return value
    if not _DNS_LABEL.match(value):
        raise ValueError(f"not a valid Kubernetes name (RFC 1123 label): {_messages.echo(value)}")
    return value


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules (rule, message) into the CRD.

    Each rule mirrors a pydantic validator of the same model, so the API
    server rejects what ``gatetrace policy validate`` rejects.
    """
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class Unit:
    """A marker in a field's ``Annotated`` metadata naming the unit of its value; tools find
    fields by it (the operator divides every traces/s field among a gateway's pods)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Unit({self.name!r})"


TRACES_PER_SECOND = Unit("traces/s")
"""The unit of every traces-per-second field (see ``sampling.rate_keys``)."""
PROBABILITY = Unit("probability")
"""The unit of every sampling probability field (clamped to ``maxRate`` in overrides)."""

Rate = Annotated[float, pydantic.Field(ge=0.0, le=1.0), PROBABILITY]
"""A probability in [0, 1]."""


PerSecond = Annotated[float, pydantic.Field(gt=0.0, le=1_000_000.0), TRACES_PER_SECOND]
"""A strictly positive number of traces per second."""

HttpUrl = Annotated[
    str,
    pydantic.Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s/?#]+"),
    pydantic.BeforeValidator(_check_http_url),
]
"""An absolute http(s) URL with a host."""

HeaderName = Annotated[
    str,
    pydantic.Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"),
    pydantic.BeforeValidator(_check_http_token),
]
"""An HTTP header name (RFC 9110 token), normalised to lower case."""

DnsLabel = Annotated[
    str,
    pydantic.Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    pydantic.BeforeValidator(_check_dns_label),
]
"""A Kubernetes namespace or Secret name."""

ShortText = Annotated[str, pydantic.Field(min_length=1, max_length=256)]
"""A non-empty string of at most 256 characters (keys, tag names, hosts)."""

LongText = Annotated[str, pydantic.Field(max_length=4096)]
"""A string of at most 4096 characters (tag values)."""

_HEADER_VALUE = re.compile(r"[^\x00-\x20\x7f]([^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?")
"""RFC 9110 §5.5 field-value: no control character but HTAB inside (so no CR/LF, which
would split the header), no leading or trailing whitespace."""

_HEADER_VALUE_MESSAGE = (
    "not a valid HTTP header value: it must not contain CR, LF or other control "
    "characters, nor begin or end with whitespace"
)


def _check_header_value(value: object) -> object:
    if isinstance(value, str) and value and not _HEADER_VALUE.fullmatch(value):
        raise ValueError(_HEADER_VALUE_MESSAGE)  # never echoed: values may be credentials
    return value


def _header_value_field(max_length: int) -> Any:
    """The field of a header value: its length bound, and for the API server the same
    rule in CEL (which budgets a rule's cost by the length, hence the bound)."""
    return pydantic.Field(
        max_length=max_length,
        json_schema_extra=cel(
            (
                r"!self.matches('[\\x00-\\x08\\x0a-\\x1f\\x7f]|^[ \\t]|[ \\t]$')",
                _HEADER_VALUE_MESSAGE,
            )
        ),
    )


HeaderValue = Annotated[
    str, _header_value_field(4096), pydantic.AfterValidator(_check_header_value)
]
"""A reporter header value (at most 4096 characters)."""

MatchHeaderValue = Annotated[
    str, _header_value_field(1024), pydantic.AfterValidator(_check_header_value)
]
"""A header value a sampling rule matches (at most 1024 characters: 64 rules of 16
headers each stay within the API server's CEL cost budget)."""


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""``json_schema_extra`` for a list of unique scalars (the API server rejects duplicates)."""
