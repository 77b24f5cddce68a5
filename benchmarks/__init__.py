"""Benchmarks: our hot paths against peers measured in the same run.

``python -m benchmarks`` (``make bench``) runs every ``bench_*.py`` module and
prints one table; the row contract is in :mod:`benchmarks.common` and
``benchmarks/README.md``. Timing goals live here, never in unit tests.
"""
