"""The one YAML reader of the product: bounded, and never a traceback.

Every YAML text gatetrace reads (policy files, the gateway config, the
tracing file the operator writes, the demo's policies) goes through here,
because PyYAML's ``safe_load`` alone is not safe against hostile input:

- **Alias bombs.** ``a: &a [x, x]``, ``b: &b [*a, *a]``... nine levels deep
  is 400 bytes that *compose* into a small graph of shared nodes, but
  everything that walks the result (pydantic, ``json.dumps``, ``repr``)
  walks the expanded tree: 2.8 GB. We measure the expanded size of the
  composed node graph (memoised per node, so the check is linear in the
  graph) and refuse the document before constructing a single object.
  Recursive aliases are refused too.
- **Depth.** PyYAML's composer recurses once per nesting level; a 5,000-deep
  document is a ``RecursionError``. Nesting is bounded while composing.
- **Encoding.** Bytes must be UTF-8 (the YAML and JSON standards' encoding
  for our files); anything else is an error naming the first bad byte.
- **One bad document of many.** A multi-document text is split at its
  ``---``/``...`` markers and each document is parsed on its own, so a syntax
  error in document 2 still lets documents 1 and 3 be read, and the error
  says "document 2", with a line number counted in the whole file.
"""

import dataclasses
import re
from typing import Any

import yaml

from gatetrace.policy import messages

__all__ = ["MAX_DEPTH", "MAX_NODES", "Document", "YamlError", "load_documents", "load_one"]

MAX_NODES = 100_000
"""Most nodes a document may hold once every alias is expanded (a large policy has ~1,000)."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (a policy nests 6 levels)."""


class YamlError(ValueError):
    """A text is not YAML we accept; the message says where and why (never the whole value)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """One non-empty document of a text: its value, or the error that kept it from one."""

    index: int
    """Position among the text's non-empty documents, from 0."""
    line: int
    """Line (from 1) of the file where the document starts."""
    value: Any = None
    error: str | None = None


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses deep nesting and alias expansion bombs."""

    def __init__(self, stream: str, *, max_nodes: int, max_depth: int) -> None:
        super().__init__(stream)
        self._max_nodes = max_nodes
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlError(
                    f"line {mark.line + 1}: nested deeper than {self._max_depth} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def checked_data(self) -> Any:
        """The single document's value, after its expanded size passed the bound."""
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node, self._max_nodes)
        return self.construct_document(node)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the tree ``root`` stands for with aliases expanded; raises past ``limit``.

    Iterative (no recursion on hostile depth) and memoised per node, so a node
    shared by a thousand aliases is counted a thousand times but walked once.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > limit:
                raise YamlError(
                    f"line {node.start_mark.line + 1}: expands to more than {limit} nodes "
                    "through aliases (an alias bomb?)"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlError(f"line {node.start_mark.line + 1}: an alias refers to itself")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _decode(text: str | bytes) -> str:
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YamlError(
            f"not UTF-8 text: byte 0x{text[e.start]:02x} at offset {e.start} "
            "(save the file as UTF-8)"
        ) from e


def _syntax_message(e: yaml.YAMLError, line_offset: int) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1 + line_offset}, column {mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", None) or str(e)
    return f"YAML syntax error{where}: {messages.echo(problem)[1:-1]}"


def _parse(text: str, line_offset: int, max_nodes: int, max_depth: int) -> Any:
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, max_nodes=max_nodes, max_depth=max_depth)
        return loader.checked_data()
    except YamlError as e:
        message = str(e)
        if line_offset and message.startswith("line "):
            number, _, rest = message[5:].partition(":")
            message = f"line {int(number) + line_offset}:{rest}"
        raise YamlError(message) from e
    except yaml.YAMLError as e:
        raise YamlError(_syntax_message(e, line_offset)) from e
    except RecursionError as e:  # constructors of very long flow collections
        raise YamlError(f"nested too deeply (more than {max_depth} levels)") from e
    finally:
        if loader is not None:
            loader.dispose()


_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t]|$)")


def _chunks(text: str) -> list[tuple[int, str]]:
    """``(first line index, text)`` of each document between ``---``/``...`` markers.

    A ``---`` line may carry content (``--- {a: 1}``); directives (``%YAML``)
    stay with the document they precede.
    """
    chunks: list[tuple[int, list[str]]] = [(0, [])]
    for number, line in enumerate(text.splitlines(keepends=True)):
        if _MARKER.match(line):
            rest = line[3:]
            if line.startswith("---"):
                # keep any directives that opened this document with it
                start, previous = chunks[-1]
                head = [x for x in previous if x.startswith("%")]
                if head and all(x.startswith("%") or not x.strip() for x in previous):
                    chunks[-1] = (start, [])
                    chunks.append((number, [*head, line]))
                    continue
                chunks.append((number, [" " * 3 + rest]))
            else:
                chunks.append((number + 1, []))
            continue
        chunks[-1][1].append(line)
    return [(start, "".join(lines)) for start, lines in chunks]


def _is_blank(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def load_documents(
    text: str | bytes, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> list[Document]:
    """Every non-empty document of a (multi-document) YAML text, each parsed on its own.

    A document that fails carries its ``error`` instead of a value; the others
    are unaffected. A text that is not UTF-8 is one failed document.
    """
    try:
        decoded = _decode(text)
    except YamlError as e:
        return [Document(0, 1, error=str(e))]
    out: list[Document] = []
    for start, chunk in _chunks(decoded):
        if _is_blank(chunk):
            continue
        index = len(out)
        try:
            value = _parse(chunk, start, max_nodes, max_depth)
        except YamlError as e:
            out.append(Document(index, start + 1, error=str(e)))
            continue
        if value is not None:
            out.append(Document(index, start + 1, value))
    return out


def load_one(text: str | bytes, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a single-document text; raises :class:`YamlError` with the reason."""
    documents = load_documents(text, max_nodes=max_nodes, max_depth=max_depth)
    if len(documents) > 1:
        raise YamlError(f"expected one YAML document, found {len(documents)}")
    if not documents:
        return None
    document = documents[0]
    if document.error is not None:
        raise YamlError(document.error)
    return document.value
