"""Backend throughput against its FastAPI peer, with and without the metrics wrapper (wrk).

Usage: python bench/backend_bench.py [--duration 5] [--rounds 3] [--connections 32]
       [--log-level INFO] [--before DIR]
Starts a throwaway PostgreSQL with 10,000 items and one server per variant, each pinned to
CPU 1 (taskset); wrk (random ids for the item route) and PostgreSQL are pinned to CPU 0.
Variants run in interleaved rounds; the table shows medians. Variants:
  backend  `python -m backend` as shipped (metrics wrapper, JSON access log at INFO)
  bare     the same server and Litestar app without the outer wrapper (bench/backend_app.py)
  unmetered the wrapper kept, its HTTP metrics not recorded (bench/backend_app.py --unmetered):
           backend vs unmetered is what the metrics cost
  header-only the wrapper replaced by a layer that only adds X-Request-ID (bench/backend_app.py
           --header-only): what that one feature costs at least
  twin     bench/fastapi_twin.py on uvicorn (uvloop, httptools), no access log
  twin+log the same with uvicorn's default access log
  granian  the backend app as shipped on granian instead of uvicorn (bench/granian_app.py)
  before   `python -m backend` from another checkout (--before DIR), e.g. the previous commit
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
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import psutil
import psycopg
from asgi_cost import cpu_us  # bench/ is this script's directory: the in-process measurement
from litestar.types import ASGIApp
from prometheus_client import CollectorRegistry

from backend.app import create_app
from backend.settings import Settings
from lab.net import LOOPBACK, free_port
from lab.postgres import PostgresServer
from lab.procs import ManagedProcess, wait_until

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, LOAD_CORE = "1", "0"
ITEMS = 10_000
RANDOM_ITEM_LUA = f"""
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(1, {ITEMS}))
end
"""
ROUTES = {"`GET /health/live`": "/health/live", "`GET /api/items/{id}` (random)": "items"}


def server_argv(variant: str, port: int) -> list[str]:
    """The command line of one variant (run pinned, with PORT and the database in its env)."""
    if variant in ("backend", "before"):
        return [sys.executable, "-m", "backend"]
    if variant == "bare":
        return [sys.executable, "-m", "bench.backend_app"]
    if variant in ("unmetered", "header-only"):
        return [sys.executable, "-m", "bench.backend_app", f"--{variant}"]
    if variant == "granian":
        return [sys.executable, "-m", "bench.granian_app"]
    log = ["--no-access-log", "--log-level", "warning"] if variant == "twin" else []
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.fastapi_twin:app",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        *log,
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
    """User + system CPU time of a process and its children."""
    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def run_wrk(
    url: str, duration: int, connections: int, server_pid: int, script: Path | None
) -> dict[str, float]:
    """One wrk run; adds the server's CPU µs per request (robust on a busy machine)."""
    cpu_before = cpu_seconds(server_pid)
    lua = ["-s", str(script)] if script else []
    result = subprocess.run(
        [
            *("taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"),
            *("--latency", *lua, url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = parse_wrk(result.stdout)
    stats["cpu_us"] = 1e6 * (cpu_seconds(server_pid) - cpu_before) / stats["requests"]
    return stats


def start_server(
    variant: str,
    pg: PostgresServer,
    log_level: str,
    logs: Path,
    before: Path | None,
    *,
    launcher: Sequence[str] = ("taskset", "-c", SERVER_CORE),
    env: Mapping[str, str] | None = None,
    ready_s: float = 30,
) -> tuple[ManagedProcess, str]:
    """One variant, run by `launcher` (default: pinned to SERVER_CORE), `env` added to its
    environment; returns it and its base URL once it answers within `ready_s`."""
    port = free_port()
    server_env = {
        **os.environ,
        **pg.env(),
        "DATABASE_URL": pg.dsn,
        "PORT": str(port),
        "HOST": LOOPBACK,
        "LOG_LEVEL": log_level,
        **(env or {}),
    }
    cwd = before if variant == "before" and before else ROOT
    argv = [*launcher, *server_argv(variant, port)]
    proc = ManagedProcess(variant, argv, logs / f"{variant}.log", env=server_env, cwd=cwd).start()
    base = f"http://{LOOPBACK}:{port}"
    wait_until(
        lambda: _ok(base + "/health/live"),
        timeout=ready_s,
        what=f"{variant} ready",
        on_timeout=proc.log_tail,
    )
    return proc, base


def fill_items(pg: PostgresServer) -> None:
    """ITEMS rows with ids 1..ITEMS (the schema exists once a backend has started)."""
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM items").fetchone() or (0,)
        if count == 0:
            conn.execute(
                "INSERT INTO items (name, description) "
                "SELECT 'item ' || g, 'bench row ' || g FROM generate_series(1, %s) g",
                (ITEMS,),
            )


def wrapper_overhead(rounds: int, requests: int = 20_000) -> tuple[float, float]:
    """Median in-process CPU µs/request of GET /health/live without and with the wrapper
    (access log off: this isolates the metrics/request-id cost)."""
    wrapped = create_app(Settings(database_url="postgresql://unused"), CollectorRegistry())
    apps: dict[str, ASGIApp] = {"bare": wrapped.litestar, "wrapped": wrapped}
    cost: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for _ in range(rounds):
        for name, app in apps.items():
            cost[name].append(asyncio.run(cpu_us(app, lambda: "/health/live", requests)))
    return statistics.median(cost["bare"]), statistics.median(cost["wrapped"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median wins)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the backend variants")
    parser.add_argument("--before", type=Path, help="checkout whose `python -m backend` to add")
    parser.add_argument(
        "--variants", default="backend,bare,twin,twin+log", help="comma-separated variants"
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install wrk util-linux")
    variants = args.variants.split(",") + (["before"] if args.before else [])
    logs = Path(tempfile.mkdtemp(prefix="backend-bench-"))
    lua = logs / "random_item.lua"
    lua.write_text(RANDOM_ITEM_LUA)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with PostgresServer() as pg:
        # PostgreSQL shares the load generator's core, so the server's core is its own.
        postmaster = (pg.datadir / "postmaster.pid").read_text().split()[0]
        subprocess.run(
            ["taskset", "-a", "-p", "-c", LOAD_CORE, postmaster], check=True, capture_output=True
        )
        servers = {}
        try:
            for variant in variants:
                servers[variant] = start_server(variant, pg, args.log_level, logs, args.before)
                if len(servers) == 1:
                    fill_items(pg)
            for _round in range(args.rounds):
                for variant, (proc, base) in servers.items():
                    for route, path in ROUTES.items():
                        url, script = (base, lua) if path == "items" else (base + path, None)
                        run_wrk(url, 1, args.connections, proc.pid, script)  # warm-up
                        runs.setdefault((variant, route), []).append(
                            run_wrk(url, args.duration, args.connections, proc.pid, script)
                        )
        finally:
            for proc, _base in servers.values():
                proc.stop()
    report(runs, variants, args)


def report(
    runs: dict[tuple[str, str], list[dict[str, float]]],
    variants: list[str],
    args: argparse.Namespace,
) -> None:
    """Print the Markdown table of medians and the ratios bench/README.md quotes."""
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds "
        f"(median), server on CPU {SERVER_CORE}, wrk + PostgreSQL on CPU {LOAD_CORE}, "
        f"LOG_LEVEL={args.log_level}, 1-min load average at the end: {os.getloadavg()[0]:.2f}\n"
    )
    print("| variant | route | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/req |")
    print("|---|---|---:|---:|---:|---:|---:|")
    medians = {
        key: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for key, rs in runs.items()
    }
    for (variant, route), r in medians.items():
        print(
            f"| {variant} | {route} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['non2xx']:.0f} | {r['cpu_us']:.0f} |"
        )
    print()

    def ratio(a: str, b: str, route: str, key: str = "rps") -> str:
        if (a, route) not in medians or (b, route) not in medians:
            return "n/a"
        return f"{medians[(a, route)][key] / medians[(b, route)][key]:.2f}"

    for route in ROUTES:
        print(
            f"- {route}: backend/twin {ratio('backend', 'twin', route)}x req/s "
            f"(CPU/req twin/backend {ratio('twin', 'backend', route, 'cpu_us')}x), "
            f"backend/twin+log {ratio('backend', 'twin+log', route)}x, "
            f"backend/bare {ratio('backend', 'bare', route)} (1 - that = wrapper overhead), "
            f"CPU/req backend/unmetered {ratio('backend', 'unmetered', route, 'cpu_us')}x "
            "(- 1 = what the metrics cost), "
            f"backend/before {ratio('backend', 'before', route)}x"
        )
    bare_us, wrapped_us = wrapper_overhead(args.rounds)
    print(
        f"\nin-process ASGI cost of GET /health/live (no server, median of {args.rounds}): "
        f"{bare_us:.1f} µs without, {wrapped_us:.1f} µs with the wrapper "
        f"(+{wrapped_us - bare_us:.1f} µs)"
    )


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
