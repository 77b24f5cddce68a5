"""``spec.retro``: defaults, bounds, networks named in errors, merge and explain."""

import pathlib

import pydantic
import pytest

from gatetrace.embed import retro_settings
from gatetrace.policy import cli, model, retro


def test_defaults_are_private_pod_networks_16_mib_and_30_s() -> None:
    config = model.TracingConfig.model_validate({})
    assert config.retro.enabled
    assert config.retro.max_buffer_bytes == 16 << 20 and config.retro.max_age_seconds == 30
    settings = retro_settings.from_model(config.retro)
    import ipaddress

    assert settings.allows(ipaddress.ip_address("10.244.1.7"))
    assert settings.allows(ipaddress.ip_address("::1"))
    assert not settings.allows(ipaddress.ip_address("8.8.8.8"))
    assert list(config.retro.allowed_networks) == list(retro.DEFAULT_ALLOWED_NETWORKS)


@pytest.mark.parametrize(
    ("document", "where", "problem"),
    [
        ({"allowedNetworks": ["10.0.0.1/8"]}, "allowedNetworks", "not a CIDR network"),
        ({"allowedNetworks": ["pods"]}, "allowedNetworks", "not a CIDR network"),
        ({"maxBufferBytes": 1024}, "maxBufferBytes", "greater than or equal to 65536"),
        ({"maxAgeSeconds": 0}, "maxAgeSeconds", "greater than or equal to 1"),
        ({"keepConcurrency": 1000}, "keepConcurrency", "less than or equal to 256"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_bad_settings_are_named(document: dict[str, object], where: str, problem: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        model.TracingConfig.model_validate({"retro": document})
    text = str(info.value)
    assert f"retro.{where}" in text and problem in text


def test_explain_shows_the_retro_settings_and_who_set_them(tmp_path: pathlib.Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: gatetrace.dev/v1alpha1\nkind: TracingPolicy\n"
        "metadata: {name: edge, namespace: gatetrace-system}\n"
        "spec: {retro: {maxAgeSeconds: 5, allowedNetworks: [10.8.0.0/16]}}\n"
    )
    code, text = cli.explain(str(tmp_path), pod_namespace="shop", pod_labels={})
    assert code == 0, text
    assert "maxAgeSeconds: 5" in text and "- 10.8.0.0/16" in text
    assert any(
        line.split() == ["retro.maxAgeSeconds", "gatetrace-system/edge"]
        for line in text.splitlines()
    )
    assert any(line.split() == ["retro.maxBufferBytes", "<default>"] for line in text.splitlines())
