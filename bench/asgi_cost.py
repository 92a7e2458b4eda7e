"""CPU per request of the backend app and its FastAPI peer, driven in-process (no server).

Usage: python -m bench.asgi_cost [--requests 5000] [--rounds 5]
A throwaway PostgreSQL with 10,000 items; each app is called directly as an ASGI callable,
one request at a time, and the process's own CPU time (time.process_time: this process only,
not PostgreSQL's) is divided by the requests. On a shared machine this is far steadier than
req/s under wrk; it leaves out the HTTP server, which both sides share (uvicorn + httptools).
Variants: backend (wrapper + JSON access log at INFO to a file), backend at WARNING (metrics,
no access line), unmetered at WARNING (the wrapper without its HTTP metrics: backend@WARNING
minus this is what the metrics cost), bare Litestar, and the twin.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from backend.app import create_app
from backend.logs import configure_logging
from backend.settings import Settings
from lab.postgres import PostgresServer

ITEMS = 10_000
VARIANTS = ("backend", "backend@WARNING", "unmetered@WARNING", "bare", "twin")
Asgi = Callable[..., Any]


def scope(path: str) -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"user-agent", b"wrk")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def cpu_us(app: Asgi, paths: Callable[[], str], requests: int) -> float:
    """CPU µs per request over `requests` sequential requests; fails on a non-200."""
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(scope(paths()), receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {set(statuses)}")
    return 1e6 * spent / requests


@asynccontextmanager
async def served(variant: str, pg: PostgresServer) -> AsyncIterator[Asgi]:
    """The app of `variant`, its lifespan running (pool open)."""
    if variant == "twin":
        os.environ["DATABASE_URL"] = pg.dsn
        from bench.fastapi_twin import app as twin

        context: AbstractAsyncContextManager[Any] = twin.router.lifespan_context(twin)
        async with context:
            yield twin
        return
    level = "WARNING" if variant.endswith("@WARNING") else "INFO"
    logging.getLogger().setLevel(level)
    backend = create_app(Settings.from_env({**pg.env(), "LOG_LEVEL": level}), CollectorRegistry())
    if variant.startswith("unmetered"):  # the wrapper without its HTTP metrics
        backend.metrics.http.observe = lambda *_: None  # type: ignore[method-assign]
    async with backend.litestar.lifespan():
        yield backend.litestar if variant == "bare" else backend


async def measure(pg: PostgresServer, requests: int, rounds: int) -> dict[tuple[str, str], float]:
    random_item: Callable[[], str] = lambda: f"/api/items/{random.randint(1, ITEMS)}"  # noqa: E731
    routes = {"GET /health/live": lambda: "/health/live", "GET /api/items/{id}": random_item}
    costs: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for variant in VARIANTS:
            async with served(variant, pg) as app:
                for route, paths in routes.items():
                    await cpu_us(app, paths, requests // 10)  # warm-up
                    costs.setdefault((variant, route), []).append(
                        await cpu_us(app, paths, requests)
                    )
    return {key: statistics.median(values) for key, values in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    log_file = Path(tempfile.mkdtemp(prefix="asgi-cost-")) / "stdout.log"
    real_stdout = sys.stdout
    sys.stdout = log_file.open("w")  # the JSON access log goes to a file, as in a container
    configure_logging("INFO")
    with PostgresServer() as pg:
        asyncio.run(_prepare(pg))
        costs = asyncio.run(measure(pg, args.requests, args.rounds))
    sys.stdout.close()
    sys.stdout = real_stdout
    print(f"in-process CPU µs/request, median of {args.rounds} rounds x {args.requests} requests")
    print("| variant | GET /health/live | GET /api/items/{id} (random) |")
    print("|---|---:|---:|")
    for variant in VARIANTS:
        live, item = costs[(variant, "GET /health/live")], costs[(variant, "GET /api/items/{id}")]
        print(f"| {variant} | {live:.1f} | {item:.1f} |")


async def _prepare(pg: PostgresServer) -> None:
    """Create the schema (the backend's lifespan) and ITEMS rows."""
    backend = create_app(Settings.from_env(pg.env()), CollectorRegistry())
    async with backend.litestar.lifespan():  # opens the pool and creates the schema
        pass
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO items (name, description) "
            "SELECT 'item ' || g, 'bench row ' || g FROM generate_series(1, %s) g",
            (ITEMS,),
        )


if __name__ == "__main__":
    main()
