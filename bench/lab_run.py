"""Benchmark: wall time of the whole headless lab run on the local target (goal: <= 60 s).

    python bench/lab_run.py [--runs N] [--lanes 1,2,3] [--solutions] [--target local]

Runs `python -m lab run` (stacks up, every notebook, report, teardown) N times per lane count,
the lane counts interleaved round by round, and prints Markdown tables: per run the wall time,
the run's own duration from summary.json, the CPU time it used (itself and every process it
started: user + system, from the kernel's accounting of waited-for children), the 1-minute load
average before and after it (the machine may be shared: say how busy it was); then each
notebook's time in the last run of each lane count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    lanes: int
    wall_s: float
    cpu_s: float
    summary: dict[str, Any]
    load: str


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(args: argparse.Namespace, lanes: int) -> Run:
    load_before, cpu_before = os.getloadavg()[0], children_cpu_s()
    with tempfile.TemporaryDirectory(prefix="lab-run-bench-") as report:
        argv = [sys.executable, "-m", "lab", "run", "--target", args.target]
        argv += ["--report-dir", report, "--lanes", str(lanes)]
        argv += ["--notebooks-dir", str(args.notebooks_dir)] if args.notebooks_dir else []
        argv += ["--solutions"] if args.solutions else []
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"lab run failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        summary = json.loads((Path(report) / "summary.json").read_text())
    load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
    return Run(lanes, wall, children_cpu_s() - cpu_before, summary, load)


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--runs", type=int, default=1, help="runs per lane count")
    cli.add_argument("--lanes", default="2", help="comma-separated lane counts, e.g. 1,2,3")
    cli.add_argument("--solutions", action="store_true", help="run the exercises' solutions")
    cli.add_argument("--target", default="local")
    cli.add_argument(
        "--notebooks-dir",
        type=Path,
        default=None,
        help="time these notebooks (default: notebooks/)",
    )
    args = cli.parse_args()
    counts = [int(n) for n in args.lanes.split(",")]
    runs = [one_run(args, lanes) for _ in range(args.runs) for lanes in counts]
    print(
        "| run | lanes | wall (s) | notebooks (s, summary.json) | CPU (s) | load average 1 min |"
        "\n|---|---|---|---|---|---|"
    )
    for number, run in enumerate(runs, start=1):
        print(
            f"| {number} | {run.lanes} | {run.wall_s:.1f} | {run.summary['duration_s']} | "
            f"{run.cpu_s:.0f} | {run.load} |"
        )
    for lanes in counts:
        mine = [run for run in runs if run.lanes == lanes]
        walls = [run.wall_s for run in mine]
        print(f"\n{lanes} lane(s): median wall {statistics.median(walls):.1f} s over {len(walls)}")
        print("\n| notebook | time (s) | cells executed | skipped | checks |")
        print("|---|---|---|---|---|")
        for row in mine[-1].summary["notebooks"]:
            print(
                f"| {row['name']} | {row['duration_s']} | {row['cells_executed']} | "
                f"{row['cells_skipped']} | {row['checks_passed']} |"
            )


if __name__ == "__main__":
    main()
