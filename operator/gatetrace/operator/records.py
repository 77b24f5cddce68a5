"""Turning TracingPolicy objects (from the API server or YAML files) into
:class:`~gatetrace.operator.core.PolicyRecord`, validated once."""

from collections.abc import Mapping
from typing import Any

import pydantic

from gatetrace.operator import core as _core
from gatetrace.operator import plan as _plan
from gatetrace.policy import errors as _errors
from gatetrace.policy import model as _model

__all__ = ["record_from_object"]


def record_from_object(obj: Mapping[str, Any]) -> _core.PolicyRecord:
    """Validate a TracingPolicy object; an invalid one keeps its field-path errors."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ref = _plan.PolicyRef(str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
    errors: tuple[tuple[str, str], ...] = ()
    body = {k: v for k, v in obj.items() if k != "status"}
    try:
        _model.TracingPolicy.model_validate(body)
    except pydantic.ValidationError as e:
        failed: _errors.ValidationFailed = _errors.from_pydantic(e)
        errors = tuple((err.loc, err.msg) for err in failed.errors) or (("", str(e)),)
    except _errors.ValidationFailed as e:
        errors = tuple((err.loc, err.msg) for err in e.errors)
    generation = meta.get("generation")
    return _core.PolicyRecord(
        ref=ref,
        generation=generation if isinstance(generation, int) else 1,
        created=str(meta.get("creationTimestamp") or ""),
        body=body,
        errors=errors,
        status=dict(obj.get("status") or {}),
    )
