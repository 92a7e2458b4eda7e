"""A backend whose PostgreSQL sockets are above file descriptor 1024 (issue 12, item 1).

A process serving many clients (idle keep-alive connections are enough) hands the pool
descriptors of 1024 and more; select.select() refuses those, poll() does not.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import psutil
import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from backend.app import create_app
from backend.settings import Settings
from lab.postgres import PostgresServer

HELD_FDS = 1100


@pytest.fixture
def low_fds_taken() -> Iterator[None]:
    """Occupy every descriptor below HELD_FDS, so new sockets get numbers above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * HELD_FDS:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {2 * HELD_FDS}: cannot open enough fds")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2 * HELD_FDS), hard))
    held: list[int] = []
    try:
        while (fd := os.open(os.devnull, os.O_RDONLY)) < HELD_FDS:
            held.append(fd)
        os.close(fd)
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_pool_connections_above_fd_1024_serve_requests(
    postgres: PostgresServer, low_fds_taken: None
) -> None:
    app = create_app(Settings.from_env(postgres.env()), CollectorRegistry())
    with TestClient(app) as client:
        pool_fds = [
            conn.fd
            for conn in psutil.Process().net_connections("tcp")
            if conn.raddr and conn.raddr.port == postgres.port
        ]
        assert pool_fds, "the pool holds no connection to PostgreSQL"
        assert min(pool_fds) >= 1024  # the precondition this test is about
        for _ in range(20):  # every checkout runs the connection check
            assert client.get("/api/items?limit=1").status_code == 200
        assert client.get("/health/ready").status_code == 200
