"""Loopback ports and the lab's one small HTTP client (stdlib only: `lab up` starts fast).

Used by the targets (readiness of backends, Prometheus and Grafana), the port-forwards and the
runner's diagnostics. Richer HTTP (sessions, auth) lives where it is needed (`lab.chaos`,
`lab.prom`); these helpers answer "is it up?" and "what does it say?".
"""

from __future__ import annotations

import json
import os
import random
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
# Linux's ephemeral ports (the ones outgoing connections take); /proc says what this machine uses.
EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default start; macOS (49152) and Windows start higher
LISTEN_SPAN = 12000  # how many ports below the ephemeral range free_port() draws from
TRIES = 64
# Ports handed out by free_port() on this machine, one file each: every lab process (the lanes of
# a run, a second `lab up`, the test suite's stacks) skips a port another one reserved less than
# RESERVED_S ago, so a port chosen for a server that binds it later (a part built lessons later, a
# replica restarted on its port after its crash back-off) is not handed out twice meanwhile.
RESERVATIONS = Path(tempfile.gettempdir()) / "ironclad-lab-ports"
RESERVED_S = 300.0


def listen_ports() -> range:
    """The ports free_port() chooses from: just below the ephemeral range."""
    try:
        low = int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = DEFAULT_EPHEMERAL_LOW
    return range(max(1024, low - LISTEN_SPAN), low)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on `host` right now and reserved for a server the lab starts next.

    Chosen below the ephemeral range on purpose: a port the OS hands out (bind to 0) can be taken
    by any outgoing connection (a scrape, a database client) in the moment between this check
    and the server's own bind, which made `lab up` fail now and then with "address already in
    use". Outgoing connections never take ports outside the ephemeral range; other lab processes
    skip it while it is reserved (`reserve`).
    """
    for port in random.sample(listen_ports(), TRIES):
        if not reserve(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: the OS
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def reserve(port: int, *, renew: bool = False) -> bool:
    """Reserve `port` for RESERVED_S seconds among the lab processes of this machine: False
    when another reservation of it is younger. `renew=True` (its owner, e.g. about to restart a
    server on it) extends a reservation unconditionally."""
    RESERVATIONS.mkdir(mode=0o1777, parents=True, exist_ok=True)
    path = RESERVATIONS / str(port)
    if renew:
        path.touch()
        return True
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        return True
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < RESERVED_S:
                return False
            path.touch()  # a stale reservation (its owner long done): taken over
            return True
        except FileNotFoundError:  # released meanwhile: try again on the next port
            return False


def release(port: int) -> None:
    """End the reservation of `port` (its server is gone for good); nothing if there is none
    (port 0 included: a server that was never given one)."""
    if port:
        (RESERVATIONS / str(port)).unlink(missing_ok=True)


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status GET `url` answers (4xx/5xx included), or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URLs
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx (any failure or other status is False)."""
    status = http_status(url, timeout)
    return status is not None and 200 <= status < 300


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET `url` and decode its JSON body (raises OSError / ValueError on failure)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URLs
        return json.load(response)
