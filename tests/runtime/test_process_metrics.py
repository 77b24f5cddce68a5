"""Process metrics read from a /proc tree (a crafted one and the real one), and the
fallback where there is none."""

import os
import pathlib
import resource

from prometheus_client.parser import text_string_to_metric_families

from gatetrace.runtime import metrics, process_metrics


def _fake_proc(root: pathlib.Path, comm: str = "python (x) y") -> pathlib.Path:
    (root / "self" / "fd").mkdir(parents=True)
    for fd in range(3):
        (root / "self" / "fd" / str(fd)).touch()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue
    # starttime vsize rss ...
    rest = ["S", "1", "1", "1", "0", "-1", "0", "0", "0", "0", "0"]
    rest += [str(3 * ticks), str(ticks), "0", "0", "20", "0", "1", "0"]
    rest += [str(50 * ticks), "1048576", "10", "0"]
    (root / "self" / "stat").write_text(f"42 ({comm}) " + " ".join(rest) + "\n")
    (root / "stat").write_text("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n")
    return root


def test_the_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses(
    tmp_path: pathlib.Path,
) -> None:
    stat = process_metrics.read_proc_stat(_fake_proc(tmp_path))
    assert stat.cpu_seconds == 4.0
    assert stat.virtual_bytes == 1048576
    assert stat.resident_bytes == 10 * resource.getpagesize()
    assert stat.start_time == 1700000050.0


def test_the_metrics_render_from_a_proc_tree(tmp_path: pathlib.Path) -> None:
    registry = metrics.Registry()
    process_metrics.register_process_metrics(registry, _fake_proc(tmp_path))
    values = {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(metrics.render_prometheus([registry]))
    }
    assert values == {
        "process_cpu_seconds": 4.0,
        "process_resident_memory_bytes": 10.0 * resource.getpagesize(),
        "process_virtual_memory_bytes": 1048576.0,
        "process_start_time_seconds": 1700000050.0,
        "process_open_fds": 3.0,
        "process_max_fds": float(resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
    }


def test_without_proc_only_the_cpu_time_is_there(tmp_path: pathlib.Path) -> None:
    registry = metrics.Registry()
    process_metrics.register_process_metrics(registry, tmp_path / "missing")
    assert set(registry.metrics) == {"process_cpu_seconds"}
    assert registry.counter("process_cpu_seconds", "").value() > 0


def test_the_real_proc_tree_parses() -> None:
    stat = process_metrics.read_proc_stat()
    assert stat.cpu_seconds > 0
    assert stat.resident_bytes > 0
    assert stat.start_time > 1e9
