"""Operator settings: which namespaces the operator watches."""

from gatetrace.operator import settings


def test_the_whole_cluster_by_default() -> None:
    assert settings.OperatorSettings().watched_namespaces == ()


def test_a_namespace_list_also_watches_the_root_namespace() -> None:
    """The root namespace's policy is every gateway's cluster default (and the
    chart grants a Role there): a namespace list must not leave it unseen."""
    chosen = settings.OperatorSettings(root_namespace="gatetrace-system", namespaces=("shop",))
    assert chosen.watched_namespaces == ("shop", "gatetrace-system")
    listed = settings.OperatorSettings(root_namespace="shop", namespaces=("edge", "shop"))
    assert listed.watched_namespaces == ("edge", "shop")
