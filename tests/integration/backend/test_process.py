"""`python -m backend` as a real process: drain on SIGTERM, concurrent start-up, JSON logs."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
import psycopg
import pytest

from backend.__main__ import EXIT_NOT_STARTED, EXIT_SIGNALLED
from backend.chaos import EXIT_OUT_OF_MEMORY, MAX_MEMORY_MB, MIB
from lab.manifests import find, parse
from lab.net import free_port
from lab.postgres import PostgresServer
from lab.procs import wait_until

if TYPE_CHECKING:
    from conftest import SpawnBackend

AUTH = {"Authorization": "Bearer test-chaos-token"}
REPO = Path(__file__).resolve().parents[3]


def test_sigterm_drains_in_flight_requests_then_exits_zero(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(postgres, DRAIN_DELAY_S="2")
    with backend.http() as http:
        for path in ("/api/chaos/latency/3000", "/api/chaos/enable"):
            assert http.post(path, headers=AUTH).status_code == 200
    results: list[int] = []

    def slow_request() -> None:
        results.append(httpx.get(backend.url + "/api/items", timeout=10).status_code)

    slow = threading.Thread(target=slow_request)
    slow.start()
    # /metrics leaves itself (and the health probes) out of the gauge.
    wait_until(
        lambda: backend.metric("http_requests_in_flight") == 1,
        timeout=5,
        what="the slow request in flight",
    )
    backend.proc.signal(signal.SIGTERM)
    wait_until(
        lambda: backend.status("/health/ready") == 503,
        timeout=1,
        what="readiness 503 right after SIGTERM",
        on_timeout=backend.proc.log_tail,
    )
    assert backend.status("/health/live") == 200  # new requests are still served while draining
    slow.join(timeout=10)
    assert results == [200]
    assert backend.proc.popen is not None
    assert backend.proc.popen.wait(timeout=15) == 0, backend.proc.log_tail()
    assert "connection pool closed" in backend.proc.log_path.read_text()


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> str:
    """A new, empty database on the session server (no schema yet)."""
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=str(postgres.socket_dir),
        port=postgres.port,
        user="postgres",
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER {postgres.user}')
    return name


def test_replicas_starting_at_once_create_the_schema_safely(
    postgres: PostgresServer, spawn_backend: SpawnBackend, fresh_database: str
) -> None:
    replicas = [spawn_backend(postgres, wait=False, POSTGRES_DB=fresh_database) for _ in range(4)]
    for replica in replicas:
        replica.wait_ready()
    with replicas[0].http() as http:
        created = http.post("/api/items", json={"name": "first"}).json()
    with replicas[-1].http() as http:
        assert http.get(f"/api/items/{created['id']}").json()["name"] == "first"


def test_logs_are_json_lines_with_the_request_id(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(postgres)
    with backend.http() as http:
        given = http.get("/api/items/424242", headers={"X-Request-ID": "trace-me-1"})
        generated = http.get("/health/live")
    assert given.headers["x-request-id"] == "trace-me-1"
    assert len(generated.headers["x-request-id"]) == 32
    backend.proc.stop()
    entries = [json.loads(line) for line in backend.proc.log_path.read_text().splitlines()]
    access = [e for e in entries if e.get("request_id") == "trace-me-1" and e["msg"] == "request"]
    assert len(access) == 1
    assert access[0]["route"] == "/api/items/{id}"
    assert access[0]["status"] == 404
    assert access[0]["method"] == "GET"
    assert access[0]["duration_ms"] > 0
    assert {"time", "level", "msg"} <= access[0].keys()


def test_unreachable_database_at_start_up_exits_with_a_clear_error(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(
        postgres, wait=False, POSTGRES_PORT=str(free_port()), DB_STARTUP_TIMEOUT_S="1"
    )
    assert backend.proc.popen is not None
    assert backend.proc.popen.wait(timeout=20) == EXIT_NOT_STARTED
    log = backend.proc.log_path.read_text()
    assert "did not accept connections within 1 s" in log
    assert "POSTGRES_HOST/PORT/DB/USER/PASSWORD" in log
    assert "backend did not start" in log
    assert postgres.password not in log


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_while_waiting_for_postgres_stops_it_at_once(
    postgres: PostgresServer, spawn_backend: SpawnBackend, stop: signal.Signals
) -> None:
    """uvicorn acts on a signal only once its start-up (the lifespan) is over, and the start-up
    waited for PostgreSQL inside it: a SIGTERM was held until DB_STARTUP_TIMEOUT_S had passed.
    Bound: 10 s, far below the 120 s start-up timeout (it takes about half a second)."""
    backend = spawn_backend(
        postgres, wait=False, POSTGRES_PORT=str(free_port()), DB_STARTUP_TIMEOUT_S="120"
    )
    popen = backend.proc.popen
    assert popen is not None

    def refused() -> bool:  # the pool's warning: it is in the wait, trying to connect
        backend.proc.ensure_running()
        return "Connection refused" in backend.proc.log_path.read_text()

    wait_until(refused, timeout=30, what="the backend waiting for PostgreSQL")
    backend.proc.signal(stop)
    assert popen.wait(timeout=10) == EXIT_SIGNALLED + stop, backend.proc.log_tail()
    messages = [
        json.loads(line)["msg"]
        for line in backend.proc.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert f"{stop.name} received while waiting for PostgreSQL at 127.0.0.1:" in "\n".join(messages)
    assert messages[-1] == f"backend stopped before serving (exit code {128 + stop})"
    assert "did not accept connections" not in "\n".join(messages)  # not the timeout's exit


def test_help_prints_usage_and_the_environment_without_serving() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "backend", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PORT": "not-a-port"},
        cwd=Path(__file__).parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m backend")
    assert "READ_TIMEOUT_S" in result.stdout
    assert "MAX_CONNECTIONS" in result.stdout


def test_bad_setting_exits_with_the_variable_name(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    backend = spawn_backend(postgres, wait=False, PORT="http")
    assert backend.proc.popen is not None
    assert backend.proc.popen.wait(timeout=20) == 2
    assert "PORT='http' is not a valid int" in backend.proc.log_path.read_text()


def test_disabling_chaos_rescues_requests_already_delayed(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """Faults read the state after the delay: `disable` must reach requests in flight."""
    backend = spawn_backend(postgres)
    with backend.http() as http:
        # A latency long enough for all requests to be sleeping at once on a busy machine.
        for path in ("/api/chaos/errors/1", "/api/chaos/latency/5000", "/api/chaos/enable"):
            assert http.post(path, headers=AUTH).status_code == 200
    in_flight = 12
    with ThreadPoolExecutor(in_flight) as pool:
        delayed = [
            pool.submit(lambda: httpx.get(backend.url + "/api/items", timeout=10).status_code)
            for _ in range(in_flight)
        ]
        wait_until(
            lambda: backend.metric("http_requests_in_flight") >= in_flight,
            timeout=4,  # < the latency: none of them has reached its fault yet
            what="every delayed request in flight",
        )
        with backend.http() as http:
            assert http.post("/api/chaos/disable", headers=AUTH).status_code == 200
        statuses = [future.result() for future in delayed]
    assert statuses == [200] * in_flight


def test_memory_hog_beyond_rlimit_as_exits_like_an_oom_kill(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """The process analog of a container OOM kill: a real kernel limit (RLIMIT_AS) set on the
    running backend; an allocation under it is held, one beyond it ends the process with
    EXIT_OUT_OF_MEMORY (for the supervisor to restart it) and a log line that says why."""
    backend = spawn_backend(postgres)
    proc = psutil.Process(backend.proc.pid)
    headroom = 256 * MIB
    limit = proc.memory_info().vms + headroom
    resource.prlimit(proc.pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    with backend.http() as http:
        rss = proc.memory_info().rss
        held = http.post("/api/chaos/memory/64", headers=AUTH)
        assert held.json() == {"held_mb": 64}
        assert proc.memory_info().rss - rss >= 60 * MIB  # written, so resident
        assert http.post("/api/chaos/memory/0", headers=AUTH).json() == {"held_mb": 0}
        with pytest.raises(httpx.HTTPError):  # the process dies instead of answering
            http.post("/api/chaos/memory/512", headers=AUTH)
    assert backend.proc.popen is not None
    assert backend.proc.popen.wait(timeout=10) == EXIT_OUT_OF_MEMORY
    assert "exceed this process's memory limit" in backend.proc.log_path.read_text()


def liveness_timeout_s() -> float:
    """The backend container's livenessProbe timeoutSeconds in the manifests."""
    deployment = find(
        parse((REPO / "manifests/base/backend.yaml").read_text()), "Deployment", "backend"
    )
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return float(container["livenessProbe"]["timeoutSeconds"])


def test_liveness_answers_in_time_during_a_large_memory_hog(
    postgres: PostgresServer, spawn_backend: SpawnBackend
) -> None:
    """Issue 20 item 7: a 1 GiB hog written in one C call held the GIL for the whole
    allocation (liveness 5.4 s, over the probe's timeout). Now the event loop keeps
    answering: every liveness request sent while the hog is written is answered within the
    probe's timeout, and none waits anywhere near as long as the hog takes (the old code's
    frozen loop made one wait about all of it)."""
    backend = spawn_backend(postgres)
    waits: list[float] = []
    with ThreadPoolExecutor(1) as pool, backend.http(timeout=60) as http:
        started = time.monotonic()
        hog = pool.submit(http.post, f"/api/chaos/memory/{MAX_MEMORY_MB}", headers=AUTH)
        while not hog.done():
            sent = time.monotonic()
            assert http.get("/health/live").status_code == 200
            waits.append(time.monotonic() - sent)
        hog_s = time.monotonic() - started
        assert hog.result().json() == {"held_mb": MAX_MEMORY_MB}
        assert http.post("/api/chaos/memory/0", headers=AUTH).json() == {"held_mb": 0}
    assert len(waits) >= 3, (waits, hog_s)  # the loop answered while the hog was written
    assert max(waits) < liveness_timeout_s(), (waits, hog_s)
    assert max(waits) < hog_s / 3, (waits, hog_s)
