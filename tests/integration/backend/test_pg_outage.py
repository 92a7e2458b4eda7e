"""PostgreSQL outages against a real backend process (on a private PostgreSQL server)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import psutil
import psycopg
import pytest

from backend.settings import Settings
from lab.ledger import Ledger
from lab.postgres import PostgresServer
from lab.procs import wait_until

if TYPE_CHECKING:
    from conftest import BackendProcess, SpawnBackend

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]
# How late past DB_TIMEOUT_S a 503 may arrive (HTTP, scheduling on a busy 2-core machine).
SLACK_S = 1.5


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may stop and restart without disturbing the others."""
    with PostgresServer() as server:
        yield server


def test_readiness_follows_postgres_without_restarting_the_backend(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(private_pg)
    pid = backend.proc.pid
    try:
        private_pg.stop("immediate")
        wait_until(
            lambda: backend.status("/health/ready") == 503,
            timeout=5,
            what="readiness 503 after PostgreSQL stopped",
            on_timeout=backend.proc.log_tail,
        )
        assert backend.status("/health/live") == 200
        with backend.http() as http:
            outage = http.get("/api/items/1")
        assert outage.status_code == 503
        assert outage.headers["content-type"] == "application/problem+json"
    finally:
        private_pg.start()
    wait_until(
        lambda: backend.status("/health/ready") == 200,
        timeout=10,
        what="readiness 200 after PostgreSQL returned",
        on_timeout=backend.proc.log_tail,
    )
    assert backend.proc.pid == pid
    assert backend.proc.running()
    assert backend.metric("circuit_breaker_open") == 0


def test_breaker_opens_during_outage_and_closes_by_itself(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(private_pg)
    private_pg.stop("immediate")
    try:
        with backend.http() as http:
            # Enough failing calls to trip the breaker (5 consecutive failures by default).
            wait_until(
                lambda: (
                    http.get("/api/items").status_code == 503
                    and backend.metric("circuit_breaker_open") == 1
                ),
                timeout=20,
                what="circuit breaker open",
                on_timeout=backend.proc.log_tail,
            )
            fast = http.get("/api/items")
        assert fast.status_code == 503
        assert "circuit open" in fast.json()["detail"]
        assert int(fast.headers["retry-after"]) >= 1
    finally:
        private_pg.start()
    # Any call after the open period is the half-open probe; it succeeds and closes the circuit.
    wait_until(
        lambda: backend.status("/api/items") == 200,
        timeout=10,
        what="a successful call after PostgreSQL returned",
        on_timeout=backend.proc.log_tail,
    )
    assert backend.metric("circuit_breaker_open") == 0


def test_no_acknowledged_write_is_lost_across_an_immediate_restart(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """Under steady write load PostgreSQL crashes and restarts; every 2xx write must survive
    (counted with lab.ledger, the ledger lesson 08 measures a restore's losses with)."""
    backend = spawn_backend(private_pg)
    with Ledger(backend.url) as ledger:
        acknowledged, statuses = ledger.acknowledged, ledger.statuses
        wait_until(lambda: len(acknowledged) >= 50, timeout=10, what="writes before the crash")
        private_pg.stop("immediate")
        wait_until(lambda: 503 in statuses, timeout=10, what="a write refused during the outage")
        private_pg.start()
        before = len(acknowledged)
        wait_until(
            lambda: len(acknowledged) >= before + 50,
            timeout=20,
            what="writes after the restart",
            on_timeout=backend.proc.log_tail,
        )
        after_recovery = len(statuses)
        wait_until(lambda: len(statuses) >= after_recovery + 50, timeout=10, what="more writes")
    assert all(s in (201, 503) for s in statuses), sorted(set(statuses))
    assert 503 not in statuses[after_recovery:], "5xx after PostgreSQL had recovered"
    assert ledger.lost() == []


def test_requests_after_a_restart_get_no_5xx(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """The pool's idle connections die with the restart; they are replaced, never used."""
    backend = spawn_backend(private_pg)
    private_pg.stop("immediate")
    private_pg.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: backend.status("/api/items?limit=1"), range(24)))
    assert statuses == [200] * 24


def log_entries(backend: BackendProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in backend.proc.log_path.read_text().splitlines()]


def test_503_bodies_name_no_database_server(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """Where the database is goes to the log, never to (unauthenticated) clients."""
    backend = spawn_backend(private_pg)
    target = f"127.0.0.1:{private_pg.port}/{private_pg.database}"
    private_pg.stop("immediate")
    try:
        with backend.http() as http:
            bodies = [http.get(path) for path in ("/api/items", "/health/ready")]
    finally:
        private_pg.start()
    for response in bodies:
        assert response.status_code == 503
        for leak in (str(private_pg.port), "127.0.0.1", private_pg.database, "connection"):
            assert leak not in response.text, (leak, response.text)
    assert any(target in str(e["msg"]) for e in log_entries(backend)), backend.proc.log_tail()


def test_a_connection_failing_its_check_is_logged_at_warning(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """The pool's own line is INFO; the cause of a discarded connection must be visible."""
    backend = spawn_backend(private_pg)
    private_pg.stop("immediate")
    private_pg.start()
    wait_until(
        lambda: backend.status("/api/items?limit=1") == 200,
        timeout=10,
        what="a successful request after the restart",
        on_timeout=backend.proc.log_tail,
    )
    checks = [e for e in log_entries(backend) if "failed its check" in str(e["msg"])]
    assert checks, backend.proc.log_tail()
    assert {e["level"] for e in checks} == {"WARNING"}
    assert all("OperationalError" in str(e["msg"]) for e in checks), checks


@contextmanager
def frozen(server: PostgresServer) -> Iterator[None]:
    """SIGSTOP the postmaster and all its backends; SIGCONT them on every path."""
    postmaster = psutil.Process(int((server.datadir / "postmaster.pid").read_text().split()[0]))
    stopped: list[int] = []
    try:
        for proc in [postmaster, *postmaster.children(recursive=True)]:
            os.kill(proc.pid, signal.SIGSTOP)
            stopped.append(proc.pid)
        yield
    finally:
        for pid in reversed(stopped):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def test_db_timeout_bounds_requests_while_postgres_is_frozen(
    private_pg: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """A hung server (SIGSTOP) cannot answer a cancel either: the 503 still comes in time."""
    timeout_s = 1.0
    backend = spawn_backend(private_pg, DB_TIMEOUT_S=str(timeout_s))
    elapsed: dict[str, float] = {}
    with backend.http(timeout=30) as http:
        assert http.get("/api/items?limit=1").status_code == 200
        with frozen(private_pg):
            for path in ("/api/items?limit=1", "/api/items/1", "/health/ready"):
                started = time.monotonic()
                assert http.get(path).status_code == 503
                elapsed[path] = time.monotonic() - started
    assert max(elapsed.values()) < timeout_s + SLACK_S, elapsed
    wait_until(
        lambda: backend.status("/health/ready") == 200,
        timeout=20,
        what="readiness 200 after PostgreSQL resumed",
        on_timeout=backend.proc.log_tail,
    )
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: backend.status("/api/items?limit=1"), range(24)))
    assert statuses == [200] * 24


POOL_MAX = Settings.pool_max
LOCK_HELD_S = 6.0


def sessions_of(pg: PostgresServer, application_name: str) -> tuple[int, float]:
    """The sessions `application_name` holds, and the longest any of them waited on a lock
    (seconds since its statement started; 0 when none waits)."""
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        count, oldest = conn.execute(
            "SELECT count(*), coalesce(max(extract(epoch FROM now() - query_start))"
            " FILTER (WHERE wait_event_type = 'Lock'), 0)"
            " FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()  # type: ignore[misc]
    return int(count), float(oldest)


@pytest.mark.parametrize(
    "options",
    ["", "&options=-c%20lock_timeout%3D0%20-c%20statement_timeout%3D0"],
    ids=["server timeouts", "cancel alone"],
)
def test_a_held_lock_leaves_no_orphan_queries_and_bounded_sessions(
    private_pg: PostgresServer, spawn_backend: SpawnBackend, options: str
) -> None:
    """Issue 20 item 2: while a migration holds ACCESS EXCLUSIVE on items for longer than
    DB_TIMEOUT_S, requests answer 503, the queries they gave up end server-side instead of
    waiting on as orphans, and the replica's sessions stay within POOL_MAX plus a
    cancellation in flight. "cancel alone" turns the server-side timeouts off (options in
    the URL win), so only the cancel sent at the deadline can end the waits."""
    timeout_s = 0.5
    name = "replica-under-lock"
    backend = spawn_backend(
        private_pg,
        DB_TIMEOUT_S=str(timeout_s),
        DATABASE_URL=f"{private_pg.dsn}?application_name={name}{options}",
    )
    samples: list[tuple[int, float]] = []
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with backend.http(timeout=10) as http:
            while not stop.is_set():
                path = "/api/items" if len(statuses) % 2 else f"/api/items/{len(statuses) + 1}"
                statuses.append(http.get(path).status_code)

    with (
        psycopg.connect(private_pg.dsn) as holder,
        concurrent.futures.ThreadPoolExecutor(24) as pool,
    ):
        holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        clients = [pool.submit(load) for _ in range(24)]
        until = time.monotonic() + LOCK_HELD_S
        while time.monotonic() < until:
            samples.append(sessions_of(private_pg, name))
            time.sleep(0.05)
        holder.rollback()  # the migration ends
        stop.set()
        for client in clients:
            client.result()
    assert 503 in statuses
    assert set(statuses) <= {200, 404, 503}, set(statuses)
    most = max(count for count, _ in samples)
    longest = max(waited for _, waited in samples)
    assert most <= POOL_MAX + 2, (most, samples)  # + a cancel or two in flight
    assert longest < timeout_s + SLACK_S, (longest, samples)
    wait_until(
        lambda: backend.status("/health/ready") == 200,
        timeout=10,
        what="readiness after the lock was released",
        on_timeout=backend.proc.log_tail,
    )
    assert sessions_of(private_pg, name)[0] <= POOL_MAX
