"""Slow, idle, aborting and excess clients against a real `python -m backend` process."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.postgres import PostgresServer
from lab.procs import wait_until

from .conftest import BackendProcess, backend_spawner

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

READ_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 4
# The server looks for header-slow connections once a second; on a loaded machine give it more.
CLOSE_WITHIN_S = READ_TIMEOUT_S + 1 + 3
# The burst test must see the cap reached before the bound closes its first socket: twice
# MAX_CONNECTIONS attacks took over 1 s on a machine at load 40, so it gets a backend of its own.
BURST_READ_TIMEOUT_S = 5.0


@contextlib.contextmanager
def capped_backend(
    postgres: PostgresServer, directory: Path, read_timeout_s: float
) -> Iterator[BackendProcess]:
    """One backend with this read timeout and a cap of MAX_CONNECTIONS connections."""
    with backend_spawner(directory) as spawn:
        yield spawn(
            postgres, READ_TIMEOUT_S=str(read_timeout_s), MAX_CONNECTIONS=str(MAX_CONNECTIONS)
        )


@pytest.fixture(scope="module")
def bounded(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendProcess]:
    with capped_backend(postgres, tmp_path_factory.mktemp("bounds"), READ_TIMEOUT_S) as backend:
        yield backend


@pytest.fixture(scope="module")
def burst_bounded(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendProcess]:
    directory = tmp_path_factory.mktemp("burst")
    with capped_backend(postgres, directory, BURST_READ_TIMEOUT_S) as backend:
        yield backend


def connect(backend: BackendProcess) -> socket.socket:
    host, port = backend.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(10)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket.timeout if it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /health/live HTTP/1.1\r\nHost: lab\r\nX-Slow: "],
    ids=["nothing", "partial headers"],
)
def test_header_slow_connections_are_closed_within_the_read_timeout(
    bounded: BackendProcess, sent: bytes
) -> None:
    with connect(bounded) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed without a response
        assert time.monotonic() - started < CLOSE_WITHIN_S


def test_body_shorter_than_content_length_gets_408_and_is_closed(
    bounded: BackendProcess,
) -> None:
    with connect(bounded) as sock:
        sock.sendall(
            b"POST /api/items HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"name": "'
        )
        started = time.monotonic()
        response = read_until_closed(sock)
        assert time.monotonic() - started < CLOSE_WITHIN_S
    assert response.startswith(b"HTTP/1.1 408 "), response
    assert b"connection: close" in response.lower()
    assert b"did not arrive within 1 s" in response


def complete_request(sock: socket.socket, path: str = "/health/live") -> bytes:
    """Send GET `path` on a kept-alive connection; return the response head."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    return head


def test_connections_beyond_the_cap_get_503_except_liveness(bounded: BackendProcess) -> None:
    held = [connect(bounded) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        for sock in held:  # accepted and served: each one counts
            assert complete_request(sock).startswith(b"HTTP/1.1 200 ")
        with connect(bounded) as extra:
            head = complete_request(extra, "/health/ready")
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"connection: close" in head.lower()
        with connect(bounded) as probe:  # a process shedding load is alive
            assert complete_request(probe).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
    # The cap sheds load only while it is reached.
    wait_until(
        lambda: bounded.status("/health/ready") == 200, timeout=10, what="service after the cap"
    )


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length, head
    while len(body) < int(length[1]):
        body += sock.recv(65536)
    return head


def unread_body_attack(backend: BackendProcess) -> tuple[socket.socket, bytes]:
    """Issue 20 item 1: a GET announcing a 100000-byte body, its answer read, then one body
    byte and silence. The app never reads a GET's body, so only the server can bound it."""
    sock = connect(backend)
    sock.sendall(b"GET /api/items/0 HTTP/1.1\r\nHost: lab\r\nContent-Length: 100000\r\n\r\n")
    head = read_response(sock)
    if b"connection: close" not in head.lower():  # else the cap's 503: closed already
        sock.sendall(b"x")
    return sock, head


def test_an_unread_body_does_not_hold_the_connection(bounded: BackendProcess) -> None:
    sock, head = unread_body_attack(bounded)
    with sock:
        assert head.startswith(b"HTTP/1.1 400 "), head  # id 0 is out of bounds: no DB call
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed, without another response
        assert time.monotonic() - started < CLOSE_WITHIN_S


def test_a_burst_of_unread_bodies_neither_fails_liveness_nor_holds_the_cap(
    burst_bounded: BackendProcess,
) -> None:
    started = time.monotonic()
    attacks = [unread_body_attack(burst_bounded) for _ in range(2 * MAX_CONNECTIONS)]
    try:
        held = [sock for sock, head in attacks if head.startswith(b"HTTP/1.1 400 ")]
        assert len(held) == MAX_CONNECTIONS - 1  # the others got the cap's 503 and were closed
        assert burst_bounded.status("/health/live") == 200
        at_cap = burst_bounded.status("/health/ready")
        assert time.monotonic() - started < BURST_READ_TIMEOUT_S, "too slow to see the cap"
        assert at_cap == 503
        for sock in held:
            assert read_until_closed(sock) == b""
        assert time.monotonic() - started < BURST_READ_TIMEOUT_S + 1 + 3
    finally:
        for sock, _ in attacks:
            sock.close()
    assert burst_bounded.status("/health/ready") == 200


def requests_total(backend: BackendProcess, method: str, route: str, status: str) -> float:
    text = httpx.get(backend.url + "/metrics", timeout=5).text
    pattern = (
        rf'^http_requests_total\{{method="{method}",route="{re.escape(route)}",'
        rf'status="{status}"\}} (\S+)$'
    )
    match = re.search(pattern, text, re.M)
    return float(match[1]) if match else 0.0


def test_client_aborting_mid_upload_is_recorded_as_499_not_500(
    bounded: BackendProcess,
) -> None:
    before = requests_total(bounded, "POST", "/api/items", "500")
    with connect(bounded) as sock:
        sock.sendall(
            b"POST /api/items HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"name": "'
        )
        time.sleep(0.2)  # let the server start reading the body, then leave mid-upload
    wait_until(
        lambda: requests_total(bounded, "POST", "/api/items", "499") >= 1,
        timeout=5,
        what="the aborted upload counted as 499",
        on_timeout=bounded.proc.log_tail,
    )
    assert requests_total(bounded, "POST", "/api/items", "500") == before
