"""A pytest plugin ending the run with one line about what was skipped and why.

``make test`` on a fresh machine skips the tests that need helm or headless Chromium
(CI has both). pytest's own ``-ra`` list is long and easy to scroll past; this line is
the last one printed, names each cause with its count, and gives the one command that
installs what is missing (:data:`ENABLE_COMMAND`). Loaded by ``tests/conftest.py``.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

__all__ = [
    "ENABLE_COMMAND",
    "TOOLS",
    "Tool",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "skip_line",
]

ENABLE_COMMAND = "make test-tools"
"""Installs every tool below (Makefile target)."""


@dataclass(frozen=True)
class Tool:
    name: str
    """What the skipped tests need."""
    marker: str
    """Text that the skip reasons of tests needing it contain."""


TOOLS = (
    Tool("helm", "helm is not built"),
    Tool("headless Chromium", "headless Chromium unavailable"),
)


def skip_line(reasons: Iterable[str]) -> str | None:
    """The closing line for skips with these reasons (None when nothing was skipped)."""
    causes: Counter[str] = Counter()
    installable = False
    for reason in reasons:
        tool = next((t for t in TOOLS if t.marker in reason), None)
        installable |= tool is not None
        causes[f"needs {tool.name}" if tool else reason.removeprefix("Skipped: ")] += 1
    if not causes:
        return None
    listed = ", ".join(f"{count} {cause}" for cause, count in sorted(causes.items()))
    line = f"SKIPPED {causes.total()} tests ({listed})"
    if installable:
        line += f"; `{ENABLE_COMMAND}` installs helm and headless Chromium so they run"
    return line


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


_LINE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = skip_line(_reason(r) for r in terminalreporter.stats.get("skipped", ()))
    if line is not None:  # written at unconfigure: after pytest's own "N passed" line
        terminalreporter.config.stash[_LINE] = line


def pytest_unconfigure(config: pytest.Config) -> None:
    line = config.stash.get(_LINE, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line is not None and reporter is not None:
        reporter.write_line(line, yellow=True, bold=True)
