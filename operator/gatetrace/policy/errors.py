"""The policy package's error tree.

Every error that reaches a user names *where* (a dotted field path such as
``spec.sampling.sampler.rate``, optionally prefixed by a file and document)
and *what* was wrong.  Third-party errors (pydantic, YAML) are translated at
the edge with ``raise ... from e``.
"""

import dataclasses
import typing
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import pydantic

from gatetrace.policy import messages, reporters, sampling


def _discriminators(union: Any) -> frozenset[str]:
    """The ``type`` values of the models of an ``Annotated[A | B | ..., Field(discriminator)]``."""
    members = typing.get_args(typing.get_args(union)[0])
    return frozenset(str(member.model_fields["type"].default) for member in members)


# Discriminator values pydantic inserts into error locations of tagged unions;
# users never wrote them, so they are dropped from the paths we report.
_UNION_TAGS = _discriminators(sampling.Sampler) | _discriminators(reporters.Reporter)


_MAX_LOC = 8 * messages.ECHO_LIMIT
"""Longest field path an error repeats (each key is also cut by :func:`format_loc`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldError:
    """One problem at one place: ``loc`` is a dotted path, ``msg`` the problem."""

    loc: str
    msg: str

    def __post_init__(self) -> None:
        # a location holds client-chosen keys: a 10 MB unknown key must not come back whole
        if len(self.loc) > _MAX_LOC:
            cut = f"{self.loc[:_MAX_LOC]}... ({len(self.loc)} characters)"
            object.__setattr__(self, "loc", cut)

    def to_dict(self) -> dict[str, str]:
        """The ``{loc, msg}`` shape the admin API returns in 422 bodies."""
        return {"loc": self.loc, "msg": self.msg}

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg


class PolicyError(Exception):
    """Base of every error raised by :mod:`gatetrace.policy`."""


class ValidationFailed(PolicyError):  # noqa: N818 -- the name other packages rely on
    """A document or config did not validate; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[FieldError], *, subject: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.subject = subject
        head = f"{subject}: " if subject else ""
        lines = "; ".join(str(e) for e in self.errors) or "invalid"
        super().__init__(f"{head}{lines}")


class MergeFailed(ValidationFailed):
    """Policies that are each valid produced an invalid effective config together."""

    def __init__(
        self, errors: Sequence[FieldError], *, subject: str = "", policies: Sequence[str] = ()
    ) -> None:
        super().__init__(errors, subject=subject)
        self.policies: tuple[str, ...] = tuple(policies)
        """The ``namespace/name`` of each policy merged, lowest precedence first."""


class LoadError(PolicyError):
    """A policy file could not be read or parsed (YAML syntax, not a TracingPolicy)."""


def format_loc(loc: Iterable[int | str]) -> str:
    """Render a location tuple as ``a.b[2].c``; keys that are not identifiers get quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif len(part) > messages.ECHO_LIMIT:  # a client's key, echoed bounded
            out += f'["{part[: messages.ECHO_LIMIT]}... ({len(part)} characters)"]'
        elif part.replace("_", "").replace("-", "").isalnum():
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def _clean_loc(loc: tuple[int | str, ...], kind: str) -> tuple[int | str, ...]:
    kept: list[int | str] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        in_union = previous == "sampler" or (isinstance(previous, int) and i >= 2)
        if isinstance(part, str) and part in _UNION_TAGS and in_union:
            continue
        kept.append(part)
    if kind == "union_tag_invalid":
        kept.append("type")
    return tuple(kept)


_SECRET_FIELDS = frozenset({"headers"})
"""Fields whose values may be resolved Secrets (reporter headers): never echoed in errors."""
_PEM_FIELDS = frozenset({"ca", "cert", "key"})
"""Fields of a reporter's ``tls`` holding PEM text (perhaps from a Secret): never echoed."""


def _secret(loc: tuple[Any, ...]) -> bool:
    if not _SECRET_FIELDS.isdisjoint(loc):
        return True
    return "tls" in loc and bool(loc) and loc[-1] in _PEM_FIELDS


_URL_FIELDS = frozenset({"endpoint"})
"""Fields holding URLs that may carry credentials (userinfo, ``?api_key=``): echoed redacted."""


def _describe(error: Any) -> str:
    msg = messages.shorten_quotes(str(error["msg"]).removeprefix("Value error, "))
    value = error.get("input")
    if error["type"] not in {"missing", "extra_forbidden"} and isinstance(
        value, str | int | float | bool
    ):
        if _secret(tuple(error["loc"])):
            return f"{msg} (value redacted)"
        if isinstance(value, str) and not _URL_FIELDS.isdisjoint(error["loc"]):
            return f"{msg} (got {messages.echo_url(value)})"
        msg = f"{msg} (got {messages.echo(value)})"
    return msg


_Failure = TypeVar("_Failure", bound=ValidationFailed)


def from_pydantic(
    exc: pydantic.ValidationError,
    *,
    prefix: Sequence[int | str] = (),
    subject: str = "",
    cls: type[_Failure] = ValidationFailed,  # type: ignore[assignment]
) -> _Failure:
    """Translate a pydantic error into :class:`ValidationFailed` with readable paths."""
    errors = [
        FieldError(
            loc=format_loc((*prefix, *_clean_loc(tuple(e["loc"]), e["type"]))),
            msg=_describe(e),
        )
        for e in exc.errors()
    ]
    return cls(errors, subject=subject)
