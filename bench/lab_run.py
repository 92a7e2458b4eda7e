"""Benchmark: wall time of the whole headless lab run on the local target (goal: <= 60 s).

    python bench/lab_run.py [--runs N] [--target local]

Runs `python -m lab run` (stack up, every notebook, report, teardown) and prints a Markdown
table: wall time per run, the run's own duration from summary.json, the 1-minute load average
before and after it (the machine is shared: say how busy it was), and each notebook's time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(target: str, notebooks_dir: Path | None) -> tuple[float, dict[str, object], str]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lab-run-bench-") as report:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lab", "run", "--target", target, "--report-dir", report]
            + (["--notebooks-dir", str(notebooks_dir)] if notebooks_dir else []),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"lab run failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
        return wall, json.loads((Path(report) / "summary.json").read_text()), load


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli.add_argument("--runs", type=int, default=1)
    cli.add_argument("--target", default="local")
    cli.add_argument(
        "--notebooks-dir",
        type=Path,
        default=None,
        help="time these notebooks (default: notebooks/)",
    )
    args = cli.parse_args()
    results = [one_run(args.target, args.notebooks_dir) for _ in range(args.runs)]
    walls = [wall for wall, _, _ in results]
    print(
        "| run | wall (s) | notebooks (s, summary.json) | load average 1 min |\n|---|---|---|---|"
    )
    for number, (wall, summary, load) in enumerate(results, start=1):
        print(f"| {number} | {wall:.1f} | {summary['duration_s']} | {load} |")
    print(f"\nmedian wall time: {statistics.median(walls):.1f} s over {len(walls)} run(s)\n")
    print("| notebook | time (s) | cells executed | skipped | checks |\n|---|---|---|---|---|")
    for row in results[-1][1]["notebooks"]:  # type: ignore[attr-defined]
        print(
            f"| {row['name']} | {row['duration_s']} | {row['cells_executed']} | "
            f"{row['cells_skipped']} | {row['checks_passed']} |"
        )


if __name__ == "__main__":
    main()
