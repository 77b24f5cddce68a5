"""Shared hooks of the test suite: the closing line about skipped tests."""

from tests.skipsummary import pytest_terminal_summary, pytest_unconfigure

__all__ = ["pytest_terminal_summary", "pytest_unconfigure"]
