"""``python -m benchmarks``: run every ``bench_*`` module's ``run()`` and print one table.

Modules are found by file name (``benchmarks/bench_*.py``) and imported as
``benchmarks.<name>``; each ``run()`` returns rows (see :mod:`benchmarks.common`).
A module without ``run()`` (an older style that only prints) is run through
its ``main()`` after the table, under its own heading, so nothing is lost.
``--only NAME`` (repeatable) restricts the run to some modules, e.g.
``--only runtime``. The exit status is 0 even when a goal is missed: the
table is a report, and CI must not flake on a loaded machine.
"""

import argparse
import importlib
import pathlib
import sys
import traceback
from collections.abc import Sequence

from benchmarks import common


def _modules(only: Sequence[str]) -> list[str]:
    here = pathlib.Path(__file__).parent
    names = sorted(path.stem for path in here.glob("bench_*.py"))
    if only:
        wanted = {name if name.startswith("bench_") else f"bench_{name}" for name in only}
        names = [name for name in names if name in wanted]
    return names


def _format_table(rows: list[tuple[str, common.Row]]) -> str:
    header = ("benchmark", "ours", "peer", "ratio", "goal", "")
    lines = [header]
    for module, row in rows:
        lines.append(
            (
                f"{module}: {row.name}",
                f"{row.ours:.3f} {row.unit}",
                f"{row.peer:.3f} {row.unit}",
                f"{row.ratio:.2f}",
                "-" if row.goal_ratio is None else f"<= {row.goal_ratio:g}",
                ("ok" if row.met else "MISSED") if row.judged else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:5], widths[1:5], strict=True)]
        cells.append(line[5])
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="module, e.g. runtime")
    args = parser.parse_args(argv)
    rows: list[tuple[str, common.Row]] = []
    printers: list[tuple[str, object]] = []
    failed: list[str] = []
    for name in _modules(args.only):
        short = name.removeprefix("bench_")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            run = getattr(module, "run", None)
            if run is None:
                printers.append((name, module))
                continue
            rows.extend((short, common.as_row(row)) for row in run())
        except Exception:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            traceback.print_exc()
    print(_format_table(rows))
    for name, module in printers:
        print(f"\n{name} (no run(); its own report):")
        try:
            module.main()  # type: ignore[attr-defined]
        except Exception:
            failed.append(name)
            traceback.print_exc()
    missed = [f"{module}: {row.name}" for module, row in rows if not row.met]
    judged = sum(1 for _, row in rows if row.judged)
    print(
        f"\n{len(rows)} rows, {judged - len(missed)} within goal, {len(missed)} missed, "
        f"{len(rows) - judged} without a goal (wall clock: figures only)"
    )
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
