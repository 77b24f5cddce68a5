"""The process's own metrics, under the names every Prometheus client library uses.

::

    process_cpu_seconds_total       user + system CPU time
    process_resident_memory_bytes   resident set size
    process_virtual_memory_bytes    virtual memory size
    process_start_time_seconds      start time, seconds since the epoch
    process_open_fds                open file descriptors
    process_max_fds                 the open-file limit (soft)
    gatetrace_build_info            1, labelled with the gatetrace and Python versions

Read at collection time from Linux ``/proc/self`` (the way prometheus_client's
process collector reads them); where there is no ``/proc`` only the CPU time
(``resource.getrusage``) and the build info are registered. Stdlib only.
"""

import os
import pathlib
import platform
import resource
from collections.abc import Callable

from gatetrace.runtime import metrics as _metrics

__all__ = ["ProcStat", "read_proc_stat", "register_build_info", "register_process_metrics"]

PROC = pathlib.Path("/proc")


class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the metrics need, in seconds and bytes."""

    __slots__ = ("cpu_seconds", "resident_bytes", "start_time", "virtual_bytes")

    def __init__(
        self, cpu_seconds: float, virtual_bytes: int, resident_bytes: int, start_time: float
    ) -> None:
        self.cpu_seconds = cpu_seconds
        self.virtual_bytes = virtual_bytes
        self.resident_bytes = resident_bytes
        self.start_time = start_time


def _boot_time(proc: pathlib.Path) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError(f"no btime line in {proc / 'stat'}")


def read_proc_stat(proc: pathlib.Path = PROC, pid: str = "self") -> ProcStat:
    """Parse ``/proc/<pid>/stat`` (``proc(5)``); raise ``OSError`` when it is not there."""
    text = (proc / pid / "stat").read_text()
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    page = resource.getpagesize()
    # fields[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24
    utime, stime = int(fields[11]), int(fields[12])
    return ProcStat(
        cpu_seconds=(utime + stime) / ticks,
        virtual_bytes=int(fields[20]),
        resident_bytes=int(fields[21]) * page,
        start_time=_boot_time(proc) + int(fields[19]) / ticks,
    )


def _open_fds(proc: pathlib.Path) -> float:
    return float(len(os.listdir(proc / "self" / "fd")))


def _max_fds() -> float:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return float(soft) if soft != resource.RLIM_INFINITY else float("inf")


def _rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def register_process_metrics(registry: _metrics.Registry, proc: pathlib.Path = PROC) -> None:
    """Add the ``process_*`` metrics to ``registry``, read when it is rendered."""
    cpu = registry.counter("process_cpu_seconds", "Total user and system CPU time in seconds")
    try:
        start_time = read_proc_stat(proc).start_time
    except (OSError, ValueError, IndexError):  # no Linux /proc: what getrusage knows
        cpu.set_function(_rusage_cpu)
        return

    def stat_field(read: Callable[[ProcStat], float]) -> Callable[[], float]:
        def value() -> float:
            try:
                return read(read_proc_stat(proc))
            except (OSError, ValueError, IndexError):
                return float("nan")

        return value

    cpu.set_function(stat_field(lambda s: s.cpu_seconds))
    registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes").set_function(
        stat_field(lambda s: float(s.resident_bytes))
    )
    registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes").set_function(
        stat_field(lambda s: float(s.virtual_bytes))
    )
    registry.gauge(
        "process_start_time_seconds", "Start time of the process since the epoch in seconds"
    ).set(start_time)
    registry.gauge("process_open_fds", "Number of open file descriptors").set_function(
        lambda: _open_fds(proc)
    )
    registry.gauge("process_max_fds", "Maximum number of open file descriptors").set_function(
        _max_fds
    )


def register_build_info(registry: _metrics.Registry, version: str) -> None:
    """``gatetrace_build_info{version, python} 1``: which build a scraped process runs."""
    registry.gauge(
        "gatetrace_build_info", "The gatetrace build: always 1", ["version", "python"]
    ).set(1.0, (version, platform.python_version()))
