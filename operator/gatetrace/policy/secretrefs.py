"""Resolving Secret references (``headersFrom``, ``tls.secretName``) into an effective config.

The operator reads Secrets; this module only merges what it read, so it stays
pure and testable: ``lookup(namespace, secretName)`` returns the Secret's
decoded data.  The Secret lives in the namespace of the policy that set
``reporters`` (known from provenance).  What the policy sets itself wins over
the Secret: explicit ``headers`` over Secret entries of the same name, and
``tls.ca``/``caFile`` (``cert``/``certFile``, ``key``/``keyFile``) over the
Secret's ``ca.crt`` (``tls.crt``, ``tls.key``).  The version changes, so a
rotated Secret is pushed.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from gatetrace.policy import effective, errors, model, reporters

__all__ = [
    "TLS_KEYS",
    "SecretLookup",
    "header_entries",
    "resolve_secrets",
    "secret_names",
    "tls_entries",
]

SecretLookup = Callable[[str, str], Mapping[str, str]]
"""(namespace, secretName) -> decoded data; raises :class:`errors.PolicyError` if missing."""

TLS_KEYS: Mapping[str, str] = {"ca.crt": "ca", "tls.crt": "cert", "tls.key": "key"}
"""Secret entry (the kubernetes.io/tls layout, plus cert-manager's ``ca.crt``) -> ``tls`` field."""


def secret_names(config: model.TracingConfig) -> list[str]:
    """Secrets the config's reporters reference, in order."""
    names: list[str] = []
    for reporter in config.reporters:
        if not isinstance(reporter, reporters.SendingReporter):
            continue
        if reporter.headers_from is not None:
            names.append(reporter.headers_from.secret_name)
        if reporter.tls is not None and reporter.tls.secret_name is not None:
            names.append(reporter.tls.secret_name)
    return names


def header_entries(data: Mapping[str, str]) -> dict[str, str]:
    """A Secret's entries as reporter headers: names lower-cased, values stripped of
    surrounding whitespace (a Secret made from a file usually ends in a newline).
    Whatever is still not a valid header name or value is left for the model to reject."""
    return {str(key).lower(): str(value).strip() for key, value in data.items()}


def tls_entries(tls: Mapping[str, Any], data: Mapping[str, str], where: str) -> dict[str, Any]:
    """``tls`` (wire form) with the PEM entries of a Secret's ``data`` filled in where the
    policy set neither the field nor its ``*File``; ValueError (naming ``where``, never a
    value) when the Secret holds none of :data:`TLS_KEYS`."""
    if not any(key in data for key in TLS_KEYS):
        raise ValueError(
            f"Secret {where} holds none of {', '.join(TLS_KEYS)} (the kubernetes.io/tls layout)"
        )
    merged = dict(tls)
    for key, field in TLS_KEYS.items():
        if key in data and field not in tls and f"{field}File" not in tls:
            merged[field] = str(data[key])
    return merged


def resolve_secrets(
    result: effective.EffectiveConfig, lookup: SecretLookup
) -> effective.EffectiveConfig:
    """``result`` with every ``headersFrom`` Secret merged into the reporter's headers and
    every ``tls.secretName`` Secret into its ``tls``."""
    if not secret_names(result.config):
        return result
    owner = result.provenance.get("reporters", "")
    namespace = owner.split("/", 1)[0]
    wire = effective.wire_config(result.config)
    for i, reporter in enumerate(result.config.reporters):
        if not isinstance(reporter, reporters.SendingReporter):
            continue
        if reporter.headers_from is not None:
            data = lookup(namespace, reporter.headers_from.secret_name)
            wire["reporters"][i]["headers"] = {**header_entries(data), **reporter.headers}
        tls = reporter.tls
        if tls is not None and tls.secret_name is not None:
            data = lookup(namespace, tls.secret_name)
            where = f"{namespace}/{tls.secret_name}"
            try:
                wire["reporters"][i]["tls"] = tls_entries(wire["reporters"][i]["tls"], data, where)
            except ValueError as e:
                raise errors.ValidationFailed(
                    [errors.FieldError(f"reporters[{i}].tls.secretName", str(e))],
                    subject=f"secrets of {owner}",
                ) from e
    try:
        config = model.TracingConfig.model_validate(wire)
    except pydantic.ValidationError as e:
        raise errors.from_pydantic(e, subject=f"secrets of {owner}") from e
    return dataclasses.replace(result, config=config, version=effective.config_version(config))
