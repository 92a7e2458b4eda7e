"""free_port() draws from below the ephemeral range, so outgoing connections cannot take the port
between the check and the server's bind (the race that made `lab up` fail now and then)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lab import net


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound() -> None:
    ports = net.listen_ports()
    low = int(net.EPHEMERAL_PORTS.read_text().split()[0]) if net.EPHEMERAL_PORTS.exists() else 0
    assert ports.stop == (low or net.DEFAULT_EPHEMERAL_LOW)
    for _ in range(20):
        port = net.free_port()
        assert port in ports
        with socket.socket() as sock:
            sock.bind((net.LOOPBACK, port))  # really free: binding it works


def test_a_port_in_use_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind((net.LOOPBACK, 0))
    taken.listen()
    port = taken.getsockname()[1]
    monkeypatch.setattr(net, "listen_ports", lambda: range(port, port + 1))
    monkeypatch.setattr(net, "TRIES", 1)
    try:
        other = net.free_port()  # the only candidate is taken: the OS picks one instead
        assert other != port
    finally:
        taken.close()


def test_without_proc_the_linux_default_is_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "EPHEMERAL_PORTS", Path("/nonexistent/ip_local_port_range"))
    assert net.listen_ports() == range(
        net.DEFAULT_EPHEMERAL_LOW - net.LISTEN_SPAN, net.DEFAULT_EPHEMERAL_LOW
    )
