"""An independent check of objects against the generated CRD, as the API server would.

It applies the OpenAPI v3 schema with ``jsonschema`` (Draft 4 is what
OpenAPI 3.0 builds on), rejects unknown fields the way ``kubectl apply``'s
strict field validation does, enforces ``x-kubernetes-list-type`` set/map
uniqueness, and evaluates every ``x-kubernetes-validations`` CEL rule with
the cel-python interpreter.
"""

from typing import Any

import celpy
import jsonschema

_ENV = celpy.Environment()


def compile_rule(rule: str) -> Any:
    """Compile a CEL rule; raises ``celpy.CELParseError`` when it does not parse."""
    return _ENV.program(_ENV.compile(rule))


def _walk(schema: dict[str, Any], value: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations", []):
        result = compile_rule(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and result):
            problems.append(f"{path}: {rule['message']}")
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{path}.{key}: unknown field")
                continue
            _walk(schema["properties"][key], item, f"{path}.{key}", problems)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            _walk(schema["additionalProperties"], item, f"{path}[{key}]", problems)
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" and len({repr(v) for v in value}) != len(value):
            problems.append(f"{path}: duplicate entries in a set")
        if list_type == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            seen = [tuple(v.get(k) for k in keys) for v in value]
            if len(set(seen)) != len(seen):
                problems.append(f"{path}: duplicate map keys {keys}")
        for i, item in enumerate(value):
            _walk(schema.get("items", {}), item, f"{path}[{i}]", problems)


def crd_problems(crd: dict[str, Any], document: dict[str, Any]) -> list[str]:
    """Why the API server would reject ``document``; empty when it would accept it."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft4Validator(schema)
    problems = [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    _walk(schema, document, "", problems)
    return problems
