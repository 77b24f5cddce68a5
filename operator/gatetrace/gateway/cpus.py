"""How many CPUs this process may use: the default number of gateway workers.

The smallest of: the CPUs the scheduler lets the process run on (``sched_getaffinity``,
which a ``cpuset`` narrows), and the CPU quota of its cgroup rounded up (cgroup v2
``cpu.max``, or v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``): a container limited to
``1500m`` gets 2, to ``500m`` gets 1. At least 1.
"""

import math
import os
import pathlib

__all__ = ["available_cpus", "cgroup_cpu_quota"]

_CGROUP = pathlib.Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: pathlib.Path = _CGROUP) -> float | None:
    """The cgroup's CPU limit in CPUs, or None when there is none (or no cgroup is found)."""
    try:
        text = (root / "cpu.max").read_text().split()
    except (OSError, UnicodeDecodeError):
        text = []
    if len(text) == 2:
        quota, period = text
        if quota == "max":
            return None
        return _ratio(quota, period)
    try:
        quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return q / p


def available_cpus(root: pathlib.Path = _CGROUP) -> int:
    """The CPUs this process may use (see the module docstring)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)
