"""Each package re-exports its public API once; ``__all__`` must stay honest."""

import importlib
import pkgutil

import pytest

import gatetrace


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(gatetrace.__path__, "gatetrace."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("name", _modules())
def test_every_module_says_what_it_is_for(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"{name} has no module docstring"


def test_source_root_is_not_a_package() -> None:
    """``operator/`` must never shadow the stdlib ``operator`` module."""
    import operator

    assert hasattr(operator, "itemgetter")
    assert gatetrace.__file__ is not None
