"""A write ledger: numbered items written through the backend's API, each acknowledged write
recorded, so that "what was lost" is counted exactly afterwards.

The backend's outage tests (tests/integration/backend/test_pg_outage.py) prove with it that no
acknowledged write is lost across a crash; lesson 08 measures with it what a restore from a
backup does lose (the recovery point). A write counts as kept only when its id reads back with
the name it was written with: after a restore the sequence starts again from the backup's value,
so a new row can take a lost row's id.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

PREFIX = "ledger"


@dataclass(frozen=True)
class Write:
    """One acknowledged write: its item id and name, and when the 201 arrived (`at`, seconds
    on the caller's clock: `time.monotonic()`)."""

    id: int
    name: str
    at: float


@dataclass
class Ledger:
    """Writes `PREFIX-<n>` items to `url` from a thread, one after the other, while it runs
    (`with Ledger(url) as ledger:`); `acknowledged` holds every 201, `statuses` every answer
    (a connection error is recorded as 0)."""

    url: str
    pause: float = 0.0  # seconds between two writes
    timeout: float = 10.0
    prefix: str = PREFIX
    acknowledged: list[Write] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> Ledger:
        self._stop.clear()
        self._thread = threading.Thread(target=self._write, name="ledger", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop writing; return once the write in flight has its answer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _write(self) -> None:
        with requests.Session() as http:
            n = len(self.statuses)
            while not self._stop.is_set():
                n += 1
                name = f"{self.prefix}-{n}"
                try:
                    response = http.post(
                        f"{self.url}/api/items", json={"name": name}, timeout=self.timeout
                    )
                except requests.RequestException:
                    self.statuses.append(0)
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 201:
                    self.acknowledged.append(Write(response.json()["id"], name, time.monotonic()))
                self._stop.wait(self.pause)

    def lost(self, url: str | None = None) -> list[Write]:
        """The acknowledged writes that do not read back as written from `url` (default: the
        one written to)."""
        base = url or self.url
        missing = []
        with requests.Session() as http:
            for write in list(self.acknowledged):
                response = http.get(f"{base}/api/items/{write.id}", timeout=self.timeout)
                if response.status_code != 200 or response.json().get("name") != write.name:
                    missing.append(write)
        return missing
