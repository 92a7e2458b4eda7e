"""Highest rate lab.load sustains accurately on one CPU core.

The generator (this process) is pinned to one core (sched_setaffinity, what `taskset` does);
a trivial granian RSGI server, fast enough not to be the bottleneck, runs pinned to another.
For each rate the load runs for --duration seconds. Two verdicts per rate:
- rate held: achieved send rate and answered throughput within 1 % of the target, no errors;
- on schedule: also the 99th percentile of the send lag (how late requests left versus their
  schedule, which latencies include by design) is at most 5 ms.

    python bench/load_accuracy.py [--rates 500,1000,...] [--duration 5] [--core 0]

Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from lab import load
from lab.net import free_port, port_is_open
from lab.procs import ManagedProcess, wait_until

APP = """
async def app(scope, proto):
    proto.response_str(200, [("content-type", "text/plain")], "ok")
"""
MAX_SEND_LAG_S = 0.005
TOLERANCE = 0.01


def rate_held(summary: pd.Series, rate: float) -> bool:
    return (
        abs(summary["achieved_rate"] / rate - 1) <= TOLERANCE
        and abs(summary["throughput"] / rate - 1) <= TOLERANCE
        and summary["error_ratio"] == 0
    )


def on_schedule(summary: pd.Series, rate: float) -> bool:
    return rate_held(summary, rate) and summary["send_lag_p99"] <= MAX_SEND_LAG_S


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,1000,2000,3000,4000,5000,6000,8000")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--core", type=int, default=0, help="core for the generator")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    server_core = next((c for c in cores if c != args.core), args.core)
    os.sched_setaffinity(0, {args.core})
    root = Path(tempfile.mkdtemp(prefix="load-bench-"))
    (root / "bench_app.py").write_text(APP)
    port = free_port()
    server = ManagedProcess(
        "granian",
        [
            "taskset",
            "-c",
            str(server_core),
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "rsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ws",
            "--log-level",
            "warning",
            "bench_app:app",
        ],
        root / "server.log",
        cwd=root,
    ).start()
    url = f"http://127.0.0.1:{port}"
    rows = []
    busy = os.getloadavg()[0]
    try:
        wait_until(
            lambda: port_is_open(port), timeout=20, what="granian", on_timeout=server.log_tail
        )
        load.run(url, rate=200, requests=200, path="/", progress=False)  # warm-up
        for rate in (float(r) for r in args.rates.split(",")):
            cpu0 = time.process_time()
            summary = load.run(
                url, rate=rate, duration=args.duration, path="/", progress=False
            ).summary()
            cpu_us = (time.process_time() - cpu0) / summary["requests"] * 1e6
            rows.append((rate, summary, cpu_us))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"generator on core {args.core}, server on core {server_core}, "
        f"{args.duration:g} s per rate, Python {sys.version.split()[0]}, load average "
        f"{busy:.1f} at start (other processes compete for the cores when it is high)\n"
    )
    print(
        "| target req/s | achieved req/s | throughput req/s | send lag p99 (ms) | "
        "latency p50 / p99 (ms) | errors | CPU per request (µs) | rate held | on schedule |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|")
    for rate, s, cpu_us in rows:
        print(
            f"| {rate:g} | {s['achieved_rate']:.0f} | {s['throughput']:.0f} | "
            f"{s['send_lag_p99'] * 1000:.1f} | {s['p50'] * 1000:.1f} / {s['p99'] * 1000:.1f} | "
            f"{s['error_ratio']:.1%} | {cpu_us:.0f} | {yes(rate_held(s, rate))} | "
            f"{yes(on_schedule(s, rate))} |"
        )
    held = max((rate for rate, s, _ in rows if rate_held(s, rate)), default=0)
    timely = max((rate for rate, s, _ in rows if on_schedule(s, rate)), default=0)
    cost = sorted(row[2] for row in rows)[len(rows) // 2]
    print(
        f"\nHighest rate held: {held:g} req/s; highest on schedule: {timely:g} req/s. "
        "Generator CPU per request (median): "
        f"{cost:.0f} µs, i.e. roughly {1e6 / cost:.0f} req/s if a core were free for it alone."
    )
    return 0


def yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    raise SystemExit(main())
