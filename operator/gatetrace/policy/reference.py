"""The TracingPolicy reference in Markdown, generated from the model.

The README's "TracingPolicy reference" section is this output (a test keeps
them equal), so the docs cannot drift from what the API accepts.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

from gatetrace.policy import model

__all__ = ["markdown", "update_readme"]


def _type(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema or "anyOf" in schema:
        options = [
            o for o in schema.get("oneOf", schema.get("anyOf", [])) if o.get("type") != "null"
        ]
        return " \\| ".join(_type(o, defs) for o in options)
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), defs)}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        if isinstance(extra, dict):
            return f"map of {_type(extra, defs)}"
    return str(kind)


def _constraints(schema: Mapping[str, Any]) -> str:
    parts = []
    for key, text in (
        ("minimum", ">= {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "<= {}"),
        ("exclusiveMaximum", "< {}"),
        ("maxItems", "at most {} items"),
        ("maxLength", "at most {} chars"),
        ("maxProperties", "at most {} entries"),
    ):
        if key in schema:
            parts.append(text.format(schema[key]))
    return ", ".join(parts)


def _rows(
    schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str, seen: tuple[str, ...]
) -> Iterator[str]:
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        description = str(prop.get("description", "")).replace("\n", " ").replace("|", "\\|")
        default = prop.get("default")
        default_text = "" if default is None else f"`{json.dumps(default)}`"
        limits = _constraints(prop)
        if limits:
            description = f"{description} ({limits})" if description else limits
        yield f"| `{path}` | {_type(prop, defs)} | {default_text} | {description} |"
        for ref in _refs(prop):
            if ref in seen:
                continue
            target = defs[ref]
            if "properties" in target:
                child = f"{path}[]" if prop.get("type") == "array" else path
                if len(_refs(prop)) > 1:
                    child = f"{child}<{ref}>"
                yield from _rows(target, defs, child, (*seen, ref))


def _refs(schema: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if "$ref" in schema:
        found.append(str(schema["$ref"]).rsplit("/", 1)[-1])
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key, []):
            found.extend(_refs(option))
    if isinstance(schema.get("items"), dict):
        found.extend(_refs(schema["items"]))
    if isinstance(schema.get("additionalProperties"), dict):
        found.extend(_refs(schema["additionalProperties"]))
    return found


def markdown() -> str:
    """Every field of ``spec`` with its type, default and description."""
    schema = model.TracingPolicySpec.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    lines = [
        "| field | type | default | description |",
        "|---|---|---|---|",
        *_rows(schema, defs, "spec", ()),
    ]
    return "\n".join(lines) + "\n"


def update_readme(text: str) -> str:
    """``text`` with the section between the reference markers regenerated."""
    start, end = "<!-- reference:start -->\n", "<!-- reference:end -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError("README has no <!-- reference:start/end --> markers")
    return head + start + markdown() + end + rest.split(end, 1)[1]


if __name__ == "__main__":  # `make readme`
    import pathlib
    import sys

    path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(update_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
