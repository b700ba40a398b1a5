"""The coverage of the report's 95 % intervals, simulated: the table of docs/statistics.md.

    python benchmarks/bench_coverage.py              # 1000 simulated runs per row (about 15 s)
    python benchmarks/bench_coverage.py --reps 100   # a quick look

Each row: a design (test tracks, their artists, seeds), the SD over seeds of a cell's accuracy,
the kind of interval (a cell; a difference with paired or independent seeds), the share of runs
whose interval held the true value and the intervals' mean width, for intervals over artists
(what the report uses) and, on the same runs, over single tracks (fmareport.report.coverage).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform

import tiny  # benchmarks/tiny.py: the --tiny option

from fmareport.report.coverage import coverage_table

TINY = {"reps": 5}  # --tiny's settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="simulated runs per row (default 1000)")
    args = tiny.parse_args(parser, argv, TINY)
    table = coverage_table(reps=args.reps)
    for column in ("coverage", "mean_width", "coverage_90", "coverage_by_track", "mean_width_by_track"):
        table[column] = table[column].map(lambda v: f"{v:.3f}")
    print(f"{args.reps} simulated runs per row; {dt.date.today()}, {platform.node()}\n")
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
