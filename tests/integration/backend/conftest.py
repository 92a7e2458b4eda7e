"""Backend integration fixtures: in-process apps and real `python -m backend` processes."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from backend.app import Backend, create_app
from backend.settings import Settings
from lab import scrape
from lab.net import free_port
from lab.postgres import PostgresServer
from lab.procs import ManagedProcess, wait_until

CHAOS_TOKEN = "test-chaos-token"


@pytest.fixture
def app(postgres: PostgresServer) -> Backend:
    """An in-process backend (fresh metrics registry) on the session PostgreSQL."""
    settings = Settings.from_env({**postgres.env(), "CHAOS_TOKEN": CHAOS_TOKEN})
    return create_app(settings, CollectorRegistry())


@pytest.fixture
def client(app: Backend) -> Iterator[TestClient[Backend]]:
    """A test client running `app`'s lifespan (pool opened, schema created)."""
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class BackendProcess:
    """A real `python -m backend` process and an HTTP client pointed at it."""

    proc: ManagedProcess
    url: str

    def http(self, timeout: float = 5.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def status(self, path: str) -> int | None:
        """Status code of GET `path`, or None when the server does not answer."""
        try:
            return httpx.get(self.url + path, timeout=5.0).status_code
        except httpx.HTTPError:
            return None

    def metric(self, name: str) -> float:
        """Value of an unlabelled metric in the backend's /metrics."""
        return scrape.value(self.url, name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            self.proc.ensure_running()
            return self.status("/health/ready") == 200

        wait_until(
            ready, timeout=timeout, what=f"{self.proc.name} ready", on_timeout=self.proc.log_tail
        )


SpawnBackend = Callable[..., BackendProcess]


@contextmanager
def backend_spawner(log_dir: Path) -> Iterator[SpawnBackend]:
    """Start `python -m backend` processes on free ports; all are stopped on exit."""
    started: list[BackendProcess] = []

    def spawn(pg: PostgresServer, wait: bool = True, **env: str) -> BackendProcess:
        port = free_port()
        name = f"backend-{len(started)}"
        full_env = {
            "PATH": "/usr/bin:/bin",
            "PORT": str(port),
            "CHAOS_TOKEN": CHAOS_TOKEN,
            "DRAIN_DELAY_S": "0",
            **pg.env(),
            **env,
        }
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", "backend"],
            log_dir / f"{name}.log",
            env=full_env,
            cwd=Path(__file__).parents[3],
        ).start()
        backend = BackendProcess(proc, f"http://127.0.0.1:{port}")
        started.append(backend)
        if wait:
            backend.wait_ready()
        return backend

    try:
        yield spawn
    finally:
        for backend in started:  # signal all first so their shutdowns overlap
            backend.proc.signal(signal.SIGTERM)
        for backend in started:
            backend.proc.stop()


@pytest.fixture
def spawn_backend(tmp_path: Path) -> Iterator[SpawnBackend]:
    """Start backend processes for one test."""
    with backend_spawner(tmp_path) as spawn:
        yield spawn


@pytest.fixture(scope="module")
def served_backend(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendProcess]:
    """One backend process shared by a test module."""
    with backend_spawner(tmp_path_factory.mktemp("backend")) as spawn:
        yield spawn(postgres)
