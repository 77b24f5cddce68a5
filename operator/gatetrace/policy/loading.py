"""Reading TracingPolicy documents from YAML files and directories.

Every document is validated on its own; problems are collected (not raised)
with the file, the document's position and the field path, so
``gatetrace policy validate`` can report them all at once.
"""

import dataclasses
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import pydantic

from gatetrace.policy import errors, messages, model, yamlsafe


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedDocument:
    """One YAML document: the policy, or the problems that kept it from being one."""

    path: str
    index: int
    policy: model.TracingPolicy | None
    problems: tuple[errors.FieldError, ...] = ()

    @property
    def where(self) -> str:
        """``file#N`` (N counts documents from 1)."""
        return f"{self.path}#{self.index + 1}"


def parse_policy(document: Any) -> model.TracingPolicy:
    """Validate one decoded document; raises :class:`errors.ValidationFailed`."""
    if not isinstance(document, dict):
        raise errors.ValidationFailed(
            [errors.FieldError("", f"expected a mapping, got {type(document).__name__}")]
        )
    kind = document.get("kind")
    if kind != model.KIND:
        raise errors.ValidationFailed(
            [errors.FieldError("kind", f"expected {model.KIND!r}, got {messages.echo(kind)}")]
        )
    try:
        # Documents are wire form: camelCase only, as the API server accepts them.
        return model.TracingPolicy.model_validate(document, by_alias=True, by_name=False)
    except pydantic.ValidationError as e:
        raise errors.from_pydantic(e) from e


def load_text(text: str | bytes, path: str = "<string>") -> list[LoadedDocument]:
    """Every non-empty document of a multi-document YAML text, each validated on its own.

    A document with a YAML problem (syntax, alias bomb, depth) is reported as
    that document; the others are still validated.
    """
    loaded = []
    for document in yamlsafe.load_documents(text):
        if document.error is not None:
            error = errors.FieldError("", document.error)
            loaded.append(LoadedDocument(path, document.index, None, (error,)))
            continue
        try:
            policy = parse_policy(document.value)
        except errors.ValidationFailed as e:
            loaded.append(LoadedDocument(path, document.index, None, e.errors))
            continue
        loaded.append(LoadedDocument(path, document.index, policy))
    return loaded


def _files(paths: Iterable[str | pathlib.Path]) -> Iterator[pathlib.Path]:
    for raw in paths:
        path = pathlib.Path(raw)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file()]
            yield from sorted(found)
        else:
            yield path


def load_paths(paths: Iterable[str | pathlib.Path]) -> list[LoadedDocument]:
    """Documents of the given files and (recursively) of ``*.yaml``/``*.yml`` in directories."""
    loaded: list[LoadedDocument] = []
    for path in _files(paths):
        try:
            text = path.read_bytes()
        except OSError as e:
            error = errors.FieldError("", f"cannot read: {e.strerror or e}")
            loaded.append(LoadedDocument(str(path), 0, None, (error,)))
            continue
        loaded.extend(load_text(text, str(path)))
    return loaded
