"""PostgreSQL outages against a real backend process (on a private PostgreSQL server)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from lab.procs import PostgresServer, wait_until

if TYPE_CHECKING:
    from conftest import SpawnBackend

pytestmark = pytest.mark.slow


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
    """Under steady write load PostgreSQL crashes and restarts; every 2xx write must survive."""
    backend = spawn_backend(private_pg)
    acknowledged: list[int] = []
    statuses: list[int] = []
    stop = threading.Event()

    def write_load() -> None:
        with backend.http(timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = http.post("/api/items", json={"name": f"ledger-{n}"})
                except httpx.HTTPError:
                    continue
                statuses.append(response.status_code)
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

    writer = threading.Thread(target=write_load)
    writer.start()
    try:
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
    finally:
        stop.set()
        writer.join()
    assert all(s in (201, 503) for s in statuses), sorted(set(statuses))
    assert 503 not in statuses[after_recovery:], "5xx after PostgreSQL had recovered"
    with backend.http() as http:
        missing = [i for i in acknowledged if http.get(f"/api/items/{i}").status_code != 200]
    assert missing == []


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
