"""Port-forwarding in-process: a loopback listener whose connections are piped to a pod port.

The remote end is chosen per connection (`Connector`: `lab.k8s.NamespaceClient.connector` for
a pod), so a forward to "the i-th ready backend pod" keeps working when that pod is replaced:
the next connection goes to its successor.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.net import LOOPBACK

Connector = Callable[[], Any]  # returns a connected socket-like object (fileno, recv, sendall)


@dataclass
class Forward:
    """127.0.0.1:<free port> -> whatever `connector` connects to, retried `retries` times."""

    name: str
    connector: Connector
    retries: int = 5
    retry_delay: float = 0.5
    port: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)
    last_error: str = field(default="", init=False)
    _listener: socket.socket | None = field(default=None, init=False, repr=False)
    _open: set[Any] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Forward:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(128)
        self._listener, self.port = listener, int(listener.getsockname()[1])
        threading.Thread(target=self._accept, name=f"forward-{self.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and end every open connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in list(self._open):
                # Shut down, not close: that wakes the pipe's select() with an EOF and its
                # thread closes the sockets (a close here could leave it waiting forever).
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None and listener.fileno() != -1:
            try:
                local, _ = listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve, args=(local,), name=f"forward-{self.name}-conn", daemon=True
            ).start()

    def _connect(self) -> Any:
        for attempt in range(self.retries):
            try:
                return self.connector()
            except Exception as exc:  # any failure is retried, then reported
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < self.retries:
                    time.sleep(self.retry_delay)
        return None

    def _serve(self, local: socket.socket) -> None:
        remote = self._connect()
        if remote is None:
            local.close()
            return
        with self._lock:
            self._open.update((local, remote))
        try:
            pipe(local, remote)
        finally:
            with self._lock:
                self._open.difference_update((local, remote))
            for sock in (local, remote):
                with contextlib.suppress(OSError):
                    sock.close()


def pipe(a: Any, b: Any, chunk: int = 65536) -> None:
    """Copy bytes both ways; an EOF on one side is passed on as a half-close to the other."""
    peers = {a.fileno(): b, b.fileno(): a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        open_sides = 2
        while open_sides:
            for key, _ in selector.select():
                source, sink = key.fileobj, peers[key.fd]
                try:
                    data = source.recv(chunk)  # type: ignore[union-attr]
                    if data:
                        sink.sendall(data)
                        continue
                except OSError:
                    return
                selector.unregister(source)
                open_sides -= 1
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
