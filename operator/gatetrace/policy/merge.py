"""Deep merge of policy layers, remembering which policy set each field.

A *layer* is the part of a spec a policy actually wrote, in wire form
(camelCase).  Layers merge in precedence order: nested objects merge field by
field, maps (``tags``) merge key by key, and everything else is replaced
whole: lists, scalars and *atomic* objects (those with a ``type``
discriminator, i.e. samplers and reporters, whose variants share no fields).

Alongside the merged dict we keep a provenance tree of the same shape whose
leaves name the source; :func:`flatten_provenance` turns it into
``{"sampling.sampler": "shop/checkout", ...}`` for the final config, where
anything no layer set comes from :data:`DEFAULT_SOURCE`.
"""

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import pydantic

from gatetrace.policy import errors

DEFAULT_SOURCE = "<default>"
"""Provenance of a field no policy set: the built-in default."""

Layer: TypeAlias = dict[str, Any]
ProvTree: TypeAlias = dict[str, "str | ProvTree"]
_Kind = Literal["model", "map", "replace"]


def is_atomic(model: type[pydantic.BaseModel]) -> bool:
    """Whether a model is replaced whole when merging (it has a ``type`` discriminator)."""
    return "type" in model.model_fields


def _unwrap_model(annotation: Any) -> type[pydantic.BaseModel] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            return None
        annotation = inner[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None


@functools.cache
def merge_plan(model: type[pydantic.BaseModel]) -> Mapping[str, tuple[_Kind, Any]]:
    """For each wire field of ``model``: merge as a nested model, as a map, or replace."""
    plan: dict[str, tuple[_Kind, Any]] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        nested = _unwrap_model(field.annotation)
        if nested is not None and not is_atomic(nested):
            plan[alias] = ("model", nested)
        elif typing.get_origin(field.annotation) is dict:
            plan[alias] = ("map", None)
        else:
            plan[alias] = ("replace", None)
    return plan


def _wire(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    return value


def layer_of(model: pydantic.BaseModel, *, exclude: frozenset[str] = frozenset()) -> Layer:
    """The fields ``model`` was given explicitly, in wire form.

    Nested mergeable models are partial (only their set fields); lists and
    atomic objects are complete, since they replace what they inherit.
    ``exclude`` names wire fields to leave out (e.g. ``selector``).
    """
    out: Layer = {}
    fields = type(model).model_fields
    for name, field in fields.items():
        alias = field.alias or name
        if name not in model.model_fields_set or alias in exclude:
            continue
        value = getattr(model, name)
        if isinstance(value, pydantic.BaseModel) and not is_atomic(type(value)):
            out[alias] = layer_of(value)
        else:
            out[alias] = _wire(value)
    return out


def merge(
    model: type[pydantic.BaseModel],
    base: Layer,
    base_prov: ProvTree,
    layer: Layer,
    source: str,
) -> tuple[Layer, ProvTree]:
    """Merge ``layer`` (set by ``source``) over ``base``; return the new dict and provenance."""
    out = dict(base)
    prov = dict(base_prov)
    plan = merge_plan(model)
    for key, value in layer.items():
        kind, nested = plan.get(key, ("replace", None))
        old = out.get(key)
        if kind == "model" and isinstance(value, dict):
            old_prov = prov.get(key)
            child_prov = old_prov if isinstance(old_prov, dict) else {}
            child_base = old if isinstance(old, dict) else {}
            out[key], prov[key] = merge(nested, child_base, child_prov, value, source)
        elif kind == "map" and isinstance(value, dict) and isinstance(old, dict):
            old_prov = prov.get(key)
            keys_prov: ProvTree = dict(old_prov) if isinstance(old_prov, dict) else {}
            out[key] = {**old, **value}
            keys_prov.update(dict.fromkeys(value, source))
            prov[key] = keys_prov
        elif kind == "map" and isinstance(value, dict):
            out[key] = dict(value)
            prov[key] = dict.fromkeys(value, source)
        else:
            out[key] = value
            prov[key] = source
    return out, prov


def flatten_provenance(
    model: type[pydantic.BaseModel],
    final: Mapping[str, Any],
    prov: ProvTree | str | None,
    prefix: tuple[str, ...] = (),
) -> dict[str, str]:
    """``{dotted.path: source}`` for every leaf of ``final``, a wire dict of ``model``.

    Leaves are what merging treats as a unit: scalars, lists, atomic objects
    and map entries.
    """
    out: dict[str, str] = {}
    plan = merge_plan(model)
    for key, value in final.items():
        node = prov.get(key) if isinstance(prov, dict) else prov
        path = (*prefix, key)
        kind, nested = plan.get(key, ("replace", None))
        if kind == "model" and isinstance(value, dict) and value:
            out.update(flatten_provenance(nested, value, node, path))
        elif kind == "map" and isinstance(value, dict) and value:
            for entry in value:
                source = node.get(entry) if isinstance(node, dict) else node
                out[errors.format_loc((*path, entry))] = _source(source)
        else:
            out[errors.format_loc(path)] = _source(node)
    return out


def _source(node: "str | ProvTree | None") -> str:
    return node if isinstance(node, str) else DEFAULT_SOURCE
