"""Local target: time from `python -m lab up` to ready (JSON line printed) and to torn down.

Usage: python bench/lab_up.py [--runs 5] [--replicas 3]
Goal: ready <= 10 s on the reference machine. Results go to bench/README.md ("Lab up").
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(replicas: int, state_file: Path) -> tuple[float, float]:
    """Seconds from spawn to the JSON line, and from SIGTERM to exit."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab",
            "up",
            "--target",
            "local",
            "--json",
            "--replicas",
            str(replicas),
            "--state-file",
            str(state_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    ready = time.perf_counter() - start
    if not line:
        raise SystemExit(f"lab up exited with {process.wait()} before printing its endpoints")
    json.loads(line)
    stop = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    if process.wait(60) != 0:
        raise SystemExit(f"lab up exited with {process.returncode} on SIGTERM")
    return ready, time.perf_counter() - stop


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--runs", type=int, default=5)
    cli.add_argument("--replicas", type=int, default=3)
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_run(args.replicas, Path(tmp) / "state.json") for _ in range(args.runs)]
    ready = [r for r, _ in runs]
    down = [d for _, d in runs]
    print(f"replicas={args.replicas} runs={args.runs}")
    print(
        f"up -> ready  s: median {statistics.median(ready):.2f}  min {min(ready):.2f}  "
        f"max {max(ready):.2f}"
    )
    print(
        f"SIGTERM -> gone s: median {statistics.median(down):.2f}  min {min(down):.2f}  "
        f"max {max(down):.2f}"
    )


if __name__ == "__main__":
    main()
