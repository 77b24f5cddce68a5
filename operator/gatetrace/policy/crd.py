"""Generate the TracingPolicy CustomResourceDefinition from the pydantic model.

The model is the single source of truth: its JSON schema (with field
docstrings as descriptions) is rewritten into a Kubernetes *structural*
OpenAPI v3 schema: references inlined, ``anyOf [X, null]`` turned into
``nullable``, tagged unions (samplers, reporters) flattened into one object
whose per-type required/forbidden fields become ``x-kubernetes-validations``
CEL rules.  Defaults are deliberately left out of the schema: the API server
would write them into every object, and a field a policy did not set must stay
unset so it is inherited from lower-precedence policies (defaults are in the
descriptions instead).
"""

import copy
from typing import Any

import yaml

from gatetrace.policy import model

PLURAL = "tracingpolicies"
NAME = f"{PLURAL}.{model.GROUP}"

_DROPPED = frozenset({"title", "default", "discriminator", "examples"})

JsonSchema = dict[str, Any]


def _deref(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = copy.deepcopy(defs[ref.rsplit("/", 1)[-1]])
    extra = {k: v for k, v in node.items() if k != "$ref"}
    target.update(extra)
    return target


def _cel_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _flatten_union(variants: list[JsonSchema], description: str | None) -> JsonSchema:
    """One object holding every variant's fields; CEL rules say which type takes which."""
    properties: dict[str, JsonSchema] = {}
    tags: list[str] = []
    rules: list[dict[str, str]] = []
    for variant in variants:
        tag = variant["properties"]["type"]["enum"][0]
        tags.append(tag)
        for name, prop in variant["properties"].items():
            if name != "type":
                properties.setdefault(name, prop)
    for variant in variants:
        tag = variant["properties"]["type"]["enum"][0]
        guard = f"self.type != {_cel_literal(tag)}"
        own = [n for n in variant["properties"] if n != "type"]
        required = [n for n in variant.get("required", []) if n != "type"]
        foreign = [n for n in properties if n not in own]
        if required:
            checks = " && ".join(f"has(self.{n})" for n in required)
            rules.append(
                {
                    "rule": f"{guard} || ({checks})",
                    "message": f"{tag} requires {', '.join(required)}",
                }
            )
        if foreign:
            checks = " || ".join(f"has(self.{n})" for n in foreign)
            rules.append(
                {
                    "rule": f"{guard} || !({checks})",
                    "message": f"{tag} does not take {', '.join(foreign)}",
                }
            )
        for rule in variant.get("x-kubernetes-validations", []):
            rules.append({**rule, "rule": f"{guard} || ({rule['rule']})"})
    out: JsonSchema = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = {
        "type": {"type": "string", "enum": tags, "description": "One of: " + ", ".join(tags) + "."},
        **properties,
    }
    out["required"] = ["type"]
    out["x-kubernetes-validations"] = rules
    return out


def structural(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Rewrite one pydantic JSON-schema node (and its children) into structural form."""
    node = _deref(node, defs)
    if "oneOf" in node:
        variants = [structural(v, defs) for v in node["oneOf"]]
        return _flatten_union(variants, node.get("description"))
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union as a structural schema: {node['anyOf']}")
        inner = structural(options[0], defs)
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        merged = {**inner, **structural(outer, defs), "nullable": True}
        if "type" not in merged:
            merged["type"] = inner["type"]
        return merged
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {n: structural(p, defs) for n, p in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs)
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "patternProperties":
            # A map whose keys are constrained: the value schema is all that a
            # structural schema can say (the pattern is checked by the model).
            (values,) = value.values()
            out["additionalProperties"] = structural(values, defs)
        elif key == "propertyNames":
            continue  # map key constraints are not expressible structurally
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


_FIRST = ("description", "type", "format", "enum", "nullable")
_LAST = ("properties", "items", "additionalProperties", "required")


def _tidy(node: Any) -> Any:
    """Stable, readable key order: description and type first, children last."""
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"rule", "message"}:
        return {"rule": node["rule"], "message": node["message"]}
    keys = [k for k in _FIRST if k in node]
    keys += sorted(k for k in node if k not in _FIRST and k not in _LAST)
    keys += [k for k in _LAST if k in node]
    out = {}
    for key in keys:
        value = node[key]
        if key == "properties":
            out[key] = {n: _tidy(v) for n, v in value.items()}
        else:
            out[key] = _tidy(value)
    return out


def _schema() -> JsonSchema:
    raw = model.TracingPolicy.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema = structural(raw, defs)
    props = schema["properties"]
    # Kubernetes owns metadata's schema; only name/generateName may be constrained.
    props["metadata"] = {"type": "object"}
    for key in ("apiVersion", "kind"):
        props[key] = {"type": "string", "description": props[key].get("description", "")}
    props["status"].pop("nullable", None)
    schema.pop("required", None)
    schema["description"] = (
        "TracingPolicy steers request tracing of gatetrace gateways: samplers, "
        "propagation formats, baggage rules and reporters, applied live."
    )
    tidy: JsonSchema = _tidy(schema)
    return tidy


_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Sampler",
        "type": "string",
        "jsonPath": ".spec.sampling.sampler.type",
        "description": "Default sampler type",
    },
    {
        "name": "Rate",
        "type": "number",
        "jsonPath": ".spec.sampling.sampler.rate",
        "description": "Probability of the probabilistic sampler",
    },
    {
        "name": "Applied",
        "type": "integer",
        "jsonPath": ".status.appliedPods",
        "description": "Gateway pods running this policy",
    },
    {
        "name": "Target",
        "type": "integer",
        "jsonPath": ".status.targetPods",
        "description": "Gateway pods this policy applies to",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Applied")].status',
        "description": "Applied condition",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of TracingPolicy as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/part-of": "gatetrace"}},
        "spec": {
            "group": model.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": model.KIND,
                "listKind": f"{model.KIND}List",
                "plural": PLURAL,
                "singular": "tracingpolicy",
                "shortNames": ["tp"],
                "categories": ["gatetrace"],
            },
            "versions": [
                {
                    "name": model.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": _schema()},
                }
            ],
        },
    }


HEADER = "# Generated by `gatetrace crds` from gatetrace.policy.model; do not edit by hand.\n"


def render_crd_yaml() -> str:
    """The CRD as YAML, exactly what ``gatetrace crds`` prints and ``crds/`` holds."""
    body = yaml.safe_dump(build_crd(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body
