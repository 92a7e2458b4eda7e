"""Instructions per request under the real server (valgrind's callgrind): a cost that does not
depend on what else the machine is doing.

Usage: python bench/instructions.py [--requests 2000] [--variants backend,unmetered,...]
       [--log-level WARNING] [--before DIR]
Starts a throwaway PostgreSQL with 10,000 items, then each variant (as bench/backend_bench.py
starts it) under `valgrind --tool=callgrind` with counting off; once it answers, for each
route: counting on, 200 warm-up requests, a dump, `--requests` requests, a dump, counting off.
The second dump holds the instructions the server process executed for those requests
(uvicorn, the app, the event loop, the system-call wrappers; not the kernel's work, nor
PostgreSQL's), divided by their number. Requests are sequential on one keep-alive connection,
item ids a fixed pseudo-random sequence, hashing seeded: a run repeats within ~0.1 %.

Instructions are not time (a cache miss costs more than an add), but on this 2-vCPU machine,
shared with other jobs, they are what can be compared to a fraction of a percent: wrk's req/s
moves by tens of percent between runs (bench/README.md "Backend").
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from backend_bench import ITEMS, fill_items, start_server  # this script's directory

from lab.net import LOOPBACK
from lab.postgres import PostgresServer
from lab.procs import wait_until

WARM_UP = 200
ROUTES: dict[str, Callable[[random.Random], str]] = {
    "`GET /health/live`": lambda _: "/health/live",
    "`GET /api/items/{id}`": lambda ids: f"/api/items/{ids.randint(1, ITEMS)}",
}


class Callgrind:
    """One server process running under callgrind, steered with `callgrind_control`.

    valgrind names its control pipes after $TMPDIR and $HOST of the process it runs, and
    the backend's settings use HOST too (start_server sets it to LOOPBACK): `callgrind_control`
    must see the same values, or it finds no process (or the pipes of another one).
    """

    def __init__(self, pid: int, env: Mapping[str, str], out_file: Path) -> None:
        self.pid, self.env, self.out_file = pid, env, out_file
        self.dumps = 0

    def control(self, *args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(self.pid)],
            env=dict(self.env),
            check=True,
            capture_output=True,
        )

    def dump(self) -> int:
        """Write the counts since the last dump; return their instruction total."""
        self.control("--dump")
        self.dumps += 1
        dump = self.out_file.with_name(f"{self.out_file.name}.{self.dumps}")
        wait_until(lambda: "\ntotals:" in _text(dump), timeout=60, what=f"callgrind dump {dump}")
        match = re.search(r"^summary: (\d+)$", _text(dump), re.M)
        if match is None:
            raise RuntimeError(f"no summary line in {dump}")
        return int(match[1])


def get(base: str, paths: Callable[[], str], requests: int) -> None:
    """`requests` sequential GETs to `base` on one keep-alive connection; each must answer 200."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or LOOPBACK, url.port, timeout=60)
    try:
        for _ in range(requests):
            path = paths()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
    finally:
        connection.close()


def count(
    variant: str, pg: PostgresServer, args: argparse.Namespace, out: Path
) -> dict[str, float]:
    """Instructions per request of `variant` on each route."""
    out_file = out / f"{variant}.callgrind"
    proc, base = start_server(
        variant,
        pg,
        args.log_level,
        out,
        args.before,
        launcher=(
            *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
            f"--callgrind-out-file={out_file}",
        ),
        env={"PYTHONHASHSEED": "0"},  # the same dict layouts in every run
        ready_s=300,  # start-up under valgrind is several times slower
    )
    try:
        fill_items(pg)
        grind = Callgrind(proc.pid, {**os.environ, "HOST": LOOPBACK}, out_file)
        result = {}
        for route, path in ROUTES.items():
            paths = partial(path, random.Random(0))
            grind.control("--instr=on")
            get(base, paths, WARM_UP)
            grind.dump()
            get(base, paths, args.requests)
            result[route] = grind.dump() / args.requests
            grind.control("--instr=off")
        return result
    finally:
        proc.stop(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--variants", default="bare,header-only,unmetered,backend,twin")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the backend variants")
    parser.add_argument("--before", type=Path, help="checkout whose `python -m backend` to add")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install valgrind")
    out = Path(tempfile.mkdtemp(prefix="instructions-"))
    results: dict[str, dict[str, float]] = {}
    with PostgresServer() as pg:
        for variant in args.variants.split(",") + (["before"] if args.before else []):
            results[variant] = count(variant, pg, args, out)
            print(variant, {route: round(n) for route, n in results[variant].items()}, flush=True)
    report(results, args)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """The Markdown table bench/README.md quotes: instructions per request, and against bare."""
    print(
        f"\ninstructions per request under callgrind, {args.requests} sequential requests per "
        f"route after {WARM_UP} warm-up, LOG_LEVEL={args.log_level}\n"
    )
    print("| variant | " + " | ".join(ROUTES) + " |")
    print("|---|" + "---:|" * len(ROUTES))
    bare = results.get("bare")
    for variant, per_route in results.items():
        cells = []
        for route, n in per_route.items():
            versus = (
                f" ({100 * (n / bare[route] - 1):+.1f} %)" if bare and bare is not per_route else ""
            )
            cells.append(f"{n:,.0f}{versus}")
        print(f"| {variant} | " + " | ".join(cells) + " |")


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    main()
