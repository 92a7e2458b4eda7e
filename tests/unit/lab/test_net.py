"""free_port() draws from below the ephemeral range, so outgoing connections cannot take the port
between the check and the server's bind (the race that made `lab up` fail now and then), and
skips ports another lab process reserved (a server that binds later: a part built lessons later,
a replica waiting for its restart)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import net


@pytest.fixture(autouse=True)
def reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of the test's own (the machine's is shared by every lab process)."""
    monkeypatch.setattr(net, "RESERVATIONS", tmp_path / "ports")
    return tmp_path / "ports"


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


def test_a_port_another_process_reserved_is_skipped_until_its_reservation_ends(
    monkeypatch: pytest.MonkeyPatch, reservations: Path
) -> None:
    with socket.socket() as probe:
        probe.bind((net.LOOPBACK, 0))
        wanted = probe.getsockname()[1]
    # another lab process reserves it (a server it starts later): the real call, in a process
    code = (
        "from pathlib import Path; from lab import net; "
        f"net.RESERVATIONS = Path({str(reservations)!r}); print(net.reserve({wanted}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
    monkeypatch.setattr(net, "listen_ports", lambda: range(wanted, wanted + 1))
    monkeypatch.setattr(net, "TRIES", 1)
    assert net.free_port() != wanted  # reserved and still free: not handed out twice

    old = time.time() - net.RESERVED_S - 1
    os.utime(reservations / str(wanted), (old, old))  # its owner is long done
    assert net.free_port() == wanted  # a stale reservation is taken over
    assert not net.reserve(wanted)  # ... and is now this process's
    net.release(wanted)
    assert net.reserve(wanted)


def test_renewing_keeps_a_port_for_a_restart(reservations: Path) -> None:
    assert net.reserve(40000)
    old = time.time() - net.RESERVED_S - 1
    os.utime(reservations / "40000", (old, old))
    assert net.reserve(40000, renew=True)  # the owner's replica exited: its port waits
    assert not net.reserve(40000)
