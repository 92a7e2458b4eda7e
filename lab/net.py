"""Loopback ports and the lab's one small HTTP client (stdlib only: `lab up` starts fast).

Used by the targets (readiness of backends, Prometheus and Grafana), the port-forwards and the
runner's diagnostics. Richer HTTP (sessions, auth) lives where it is needed (`lab.chaos`,
`lab.prom`); these helpers answer "is it up?" and "what does it say?".
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
