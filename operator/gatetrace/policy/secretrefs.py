"""Resolving ``headersFrom`` Secret references into an effective config.

The operator reads Secrets; this module only merges what it read, so it stays
pure and testable: ``lookup(namespace, secretName)`` returns the Secret's
decoded data.  The Secret lives in the namespace of the policy that set
``reporters`` (known from provenance).  Explicit ``headers`` win over Secret
entries of the same name.  The version changes, so a rotated Secret is pushed.
"""

import dataclasses
from collections.abc import Callable, Mapping

import pydantic

from gatetrace.policy import effective, errors, model, reporters

SecretLookup = Callable[[str, str], Mapping[str, str]]
"""(namespace, secretName) -> decoded data; raises :class:`errors.PolicyError` if missing."""


def secret_names(config: model.TracingConfig) -> list[str]:
    """Secrets the config's reporters reference, in order."""
    return [
        r.headers_from.secret_name
        for r in config.reporters
        if isinstance(r, reporters.OtlpHttpReporter) and r.headers_from is not None
    ]


def header_entries(data: Mapping[str, str]) -> dict[str, str]:
    """A Secret's entries as reporter headers: names lower-cased, values stripped of
    surrounding whitespace (a Secret made from a file usually ends in a newline).
    Whatever is still not a valid header name or value is left for the model to reject."""
    return {str(key).lower(): str(value).strip() for key, value in data.items()}


def resolve_secrets(
    result: effective.EffectiveConfig, lookup: SecretLookup
) -> effective.EffectiveConfig:
    """``result`` with every ``headersFrom`` Secret merged into the reporter's headers."""
    if not secret_names(result.config):
        return result
    owner = result.provenance.get("reporters", "")
    namespace = owner.split("/", 1)[0]
    wire = effective.wire_config(result.config)
    for i, reporter in enumerate(result.config.reporters):
        if not isinstance(reporter, reporters.OtlpHttpReporter) or reporter.headers_from is None:
            continue
        data = lookup(namespace, reporter.headers_from.secret_name)
        wire["reporters"][i]["headers"] = {**header_entries(data), **reporter.headers}
    try:
        config = model.TracingConfig.model_validate(wire)
    except pydantic.ValidationError as e:
        raise errors.from_pydantic(e, subject=f"secrets of {owner}") from e
    return dataclasses.replace(result, config=config, version=effective.config_version(config))
