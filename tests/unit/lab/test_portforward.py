"""lab.portforward: the loopback listener and byte pipe, with a plain TCP echo server as the far
end (the Kubernetes connector itself needs a cluster and is covered by `kind` tests only)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from lab.net import port_is_open
from lab.portforward import Connector, Forward


def tcp_connector(port: int) -> Connector:
    """The far end of a test forward: a plain TCP port on loopback."""
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP server that echoes what it receives, upper-cased."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while data := conn.recv(1024):
            chunks.append(data)
        return b"".join(chunks)


def test_bytes_flow_both_ways_through_the_forward(echo_port: int) -> None:
    forward = Forward("echo", tcp_connector(echo_port)).start()
    try:
        assert forward.url == f"http://127.0.0.1:{forward.port}"
        assert roundtrip(forward.port, b"hello") == b"HELLO"
        assert roundtrip(forward.port, b"x" * 200_000) == b"X" * 200_000
    finally:
        forward.stop()


def test_failed_connects_are_retried(echo_port: int) -> None:
    attempts: list[int] = []
    connect = tcp_connector(echo_port)

    def flaky() -> Any:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("pod not ready")
        return connect()

    forward = Forward("flaky", flaky, retry_delay=0.01).start()
    try:
        assert roundtrip(forward.port, b"ok") == b"OK"
        assert forward.failures == 2
    finally:
        forward.stop()


def test_a_connection_is_closed_when_every_retry_fails() -> None:
    def refuse() -> Any:
        raise ConnectionRefusedError("no pod")

    forward = Forward("down", refuse, retries=2, retry_delay=0.01).start()
    try:
        with socket.create_connection(("127.0.0.1", forward.port), timeout=5) as conn:
            assert conn.recv(1024) == b""  # closed by the forward, not left hanging
        assert forward.last_error == "ConnectionRefusedError: no pod"
    finally:
        forward.stop()


def test_stop_frees_the_port(echo_port: int) -> None:
    forward = Forward("echo", tcp_connector(echo_port)).start()
    assert port_is_open(forward.port)
    forward.stop()
    assert not port_is_open(forward.port)


def test_stop_ends_the_threads_of_open_connections(echo_port: int) -> None:
    forward = Forward("held", tcp_connector(echo_port)).start()
    conn = socket.create_connection(("127.0.0.1", forward.port), timeout=5)
    try:
        conn.sendall(b"x")
        assert conn.recv(1) == b"X"  # the connection is piped and held open
        forward.stop()
        for thread in threading.enumerate():
            if thread.name == "forward-held-conn":
                thread.join(timeout=5)
                assert not thread.is_alive(), "a piping thread outlived stop()"
    finally:
        conn.close()
