"""README claims that tests hold: the reference section is generated from the model,
and the two commands a newcomer runs exist."""

import pathlib
import re

from gatetrace.policy import reference

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_policy_reference_matches_the_model() -> None:
    match = re.search(r"<!-- reference:start -->\n(.*)<!-- reference:end -->", README, re.S)
    assert match, "README lost its reference markers"
    assert match.group(1) == reference.markdown(), (
        "README's TracingPolicy reference is stale: run `make readme`"
    )


def test_the_two_commands_are_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in README and "make test" in README
    for target in ("demo", "test", "e2e", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make e2e" in ci
