"""The ``gatetrace`` command's own surface, run as a user runs it (a subprocess)."""

import argparse
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator

import gatetrace.cli

GATETRACE = [sys.executable, "-m", "gatetrace.cli"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GATETRACE, *args], capture_output=True, text=True, timeout=60, env=env)


def test_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("gatetrace ")
    assert result.stdout.split()[1][0].isdigit()
    assert gatetrace.cli.build_parser() is not None


def test_operator_without_credentials_says_so_in_one_line(tmp_path: pathlib.Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}
    }
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    result = _run("operator", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no cluster credentials" in lines[0] and "--kubeconfig FILE" in lines[0]

    result = _run("operator", "--kubeconfig", str(tmp_path / "missing"), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"gatetrace operator: --kubeconfig {tmp_path / 'missing'}: no such file "
        "(give the path of a kubeconfig, or run in a cluster)"
    )

    broken = tmp_path / "broken"
    broken.write_text("this: [is not a kubeconfig\n")
    result = _run("operator", "--kubeconfig", str(broken), env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not a usable kubeconfig" in result.stderr


def test_python_dash_m_gatetrace_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gatetrace", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gatetrace ")


def test_operator_kubeconfig_that_is_a_folder_is_named(tmp_path: pathlib.Path) -> None:
    result = _run("operator", "--kubeconfig", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"gatetrace operator: --kubeconfig {tmp_path}: is a folder, not a kubeconfig file\n"
    )


SPHINX_MARKUP = re.compile(r"``|:[a-z]+:`|`[^`\s]+`_")


def _help_texts(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    yield path, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _help_texts(sub, (*path, name))


def test_help_texts_are_plain_text_without_sphinx_markup() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert not SPHINX_MARKUP.search(result.stdout), result.stdout
    assert "gatetrace" in result.stdout.split("\n\n")[1]  # a description, not the usage again
    texts = dict(_help_texts(gatetrace.cli.build_parser()))
    assert {("policy", "explain"), ("gateway",), ("operator",)} <= set(texts)
    for path, text in texts.items():
        assert not SPHINX_MARKUP.search(text), (path, text)
