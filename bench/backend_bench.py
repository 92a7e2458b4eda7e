"""Backend throughput: uvicorn vs granian, with vs without the metrics wrapper (wrk, pinned cores).

Usage: python bench/backend_bench.py [--duration 5] [--rounds 3] [--connections 64]
Starts a throwaway PostgreSQL, one backend process per server x variant pinned to CPU 1
(taskset), and runs wrk pinned to CPU 0 in interleaved rounds; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from litestar.types import ASGIApp
from prometheus_client import CollectorRegistry

from backend.app import create_app
from backend.settings import Settings
from lab.net import free_port
from lab.procs import ManagedProcess, PostgresServer, wait_until

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, LOAD_CORE = "1", "0"


def server_argv(server: str, factory: str, port: int) -> list[str]:
    target = f"bench.backend_app:{factory}"
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            target,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        target,
        "--port",
        str(port),
        "--workers",
        "1",
        "--runtime-mode",
        "st",
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        "--no-ws",
    ]


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s and p50/p99 (ms) from `wrk --latency` output."""

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise ValueError(f"no {label}th percentile in wrk output:\n{output}")
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and total):
        raise ValueError(f"no request counts in wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(rps[1]),
        "requests": float(total[1]),
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": float(errors[1]) if errors else 0.0,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (granian runs a worker process)."""
    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def run_wrk(url: str, duration: int, connections: int, server_pid: int) -> dict[str, float]:
    """One wrk run; adds the server's CPU µs per request (robust on a busy machine)."""
    cpu_before = cpu_seconds(server_pid)
    result = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = parse_wrk(result.stdout)
    stats["cpu_us"] = 1e6 * (cpu_seconds(server_pid) - cpu_before) / stats["requests"]
    return stats


def start_server(
    server: str, factory: str, pg: PostgresServer, log_level: str, logs: Path
) -> tuple[ManagedProcess, str]:
    """One backend under `server`, pinned to SERVER_CORE; returns it and its base URL."""
    port = free_port()
    env = {**os.environ, **pg.env(), "LOG_LEVEL": log_level}
    argv = ["taskset", "-c", SERVER_CORE, *server_argv(server, factory, port)]
    proc = ManagedProcess(
        f"{server}-{factory}", argv, logs / f"{server}-{factory}.log", env=env, cwd=ROOT
    ).start()
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: _ok(base + "/health/ready"),
        timeout=30,
        what=f"{server} {factory} ready",
        on_timeout=proc.log_tail,
    )
    return proc, base


async def asgi_cpu_us(app: ASGIApp, path: str, requests: int) -> float:
    """CPU µs per request of driving `app` directly (no server, no network, no DB)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: object) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)  # type: ignore[arg-type]
    return 1e6 * (time.process_time() - started) / requests


def wrapper_overhead(rounds: int, requests: int = 20_000) -> tuple[float, float]:
    """Median in-process CPU µs/request of GET /health/live without and with the wrapper."""
    wrapped = create_app(Settings(database_url="postgresql://unused"), CollectorRegistry())
    apps: dict[str, ASGIApp] = {"bare": wrapped.litestar, "wrapped": wrapped}
    cost: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for _ in range(rounds):
        for name, app in apps.items():
            cost[name].append(asyncio.run(asgi_cpu_us(app, "/health/live", requests)))
    return statistics.median(cost["bare"]), statistics.median(cost["wrapped"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median wins)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="LOG_LEVEL of the backend (INFO adds one access-log line per request)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install wrk util-linux")
    logs = Path(tempfile.mkdtemp(prefix="backend-bench-"))
    combos = [(s, f) for s in ("uvicorn", "granian") for f in ("bare", "wrapped")]
    runs: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    with PostgresServer() as pg:
        # PostgreSQL shares the load generator's core, so the server's core is its own.
        postmaster = (pg.datadir / "postmaster.pid").read_text().split()[0]
        subprocess.run(
            ["taskset", "-a", "-p", "-c", LOAD_CORE, postmaster], check=True, capture_output=True
        )
        servers = {combo: start_server(*combo, pg, args.log_level, logs) for combo in combos}
        first_base = next(iter(servers.values()))[1]
        item = httpx.post(first_base + "/api/items", json={"name": "bench"}).json()["id"]
        routes = {
            "small JSON `/health/live`": "/health/live",
            "DB read `/api/items/{id}`": f"/api/items/{item}",
        }
        try:
            for _round in range(args.rounds):
                for (server, factory), (proc, base) in servers.items():
                    for route, path in routes.items():
                        run_wrk(base + path, 1, args.connections, proc.pid)  # warm-up
                        runs.setdefault((server, factory, route), []).append(
                            run_wrk(base + path, args.duration, args.connections, proc.pid)
                        )
        finally:
            for proc, _base in servers.values():
                proc.stop()
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds "
        f"(median), server on CPU {SERVER_CORE}, wrk + PostgreSQL on CPU {LOAD_CORE}, "
        f"LOG_LEVEL={args.log_level}, 1-min load average at the end: {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| server | metrics wrapper | route | req/s | p50 ms | p99 ms | non-2xx "
        "| server CPU µs/req | req/s per CPU core |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    medians = {
        key: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for key, rs in runs.items()
    }
    for (server, factory, route), r in medians.items():
        print(
            f"| {server} | {'with' if factory == 'wrapped' else 'without'} | {route} "
            f"| {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']:.0f} "
            f"| {r['cpu_us']:.0f} | {1e6 / r['cpu_us']:.0f} |"
        )
    bare_us, wrapped_us = wrapper_overhead(args.rounds)
    print(
        f"\nin-process ASGI cost of GET /health/live (no server, median of {args.rounds}): "
        f"{bare_us:.1f} µs without, {wrapped_us:.1f} µs with the wrapper "
        f"(+{wrapped_us - bare_us:.1f} µs, +{100 * (wrapped_us / bare_us - 1):.1f} %)"
    )
    print("\nmetrics wrapper overhead, by req/s (1 - with/without) and by server CPU per request:")
    for server in ("uvicorn", "granian"):
        for route in routes:
            bare, wrapped = medians[(server, "bare", route)], medians[(server, "wrapped", route)]
            print(
                f"- {server}, {route}: {100 * (1 - wrapped['rps'] / bare['rps']):.1f} % req/s, "
                f"{100 * (wrapped['cpu_us'] / bare['cpu_us'] - 1):.1f} % CPU/request"
            )


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
