"""A database outage as the clients and the circuit breakers see it, on one clock.

`run(env=...)` sends steady `/api/items` traffic to every backend replica, samples each
replica's `circuit_breaker_open` gauge from its own /metrics, takes PostgreSQL away
(`lab.database.take_down`), keeps it away for a while after every breaker has opened, brings it
back (always, also on errors and Ctrl-C) and waits until every breaker has closed. What comes
back is the data of lesson 04's circuit-breaker segment: every request (when it was sent, how
long it took, what it answered, which replica) and every breaker sample, with the moments the
database went and came back. `phases()` names each request after what the breaker was doing
when it was sent; the notebook's checks read that table.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from lab import database, load, scrape
from lab.errors import LabError
from lab.i18n import _
from lab.waits import poll

if TYPE_CHECKING:
    from lab.targets import Endpoints


class OutageLab(database.LabHandle, Protocol):
    """What the experiment needs of `lab.connect()`'s handle: the database's, and the replicas."""

    @property
    def endpoints(self) -> Endpoints: ...


BREAKER = "circuit_breaker_open"
PATH = "/api/items?limit=1"  # one short query per request: each one needs the database
SAMPLE_S = 0.1  # how often each replica's breaker gauge is read


@dataclass
class Outage:
    """Requests (`t` sent, `latency_s`, `status`, `replica`), breaker samples (`t`, `replica`,
    `open`) and `events` (seconds on the same clock: `going` when the database was being taken
    away, `down` once it was gone, `back` when it was brought back, `closed` once every
    breaker had closed)."""

    requests: pd.DataFrame
    breaker: pd.DataFrame
    events: dict[str, float] = field(default_factory=dict)

    def opened_at(self) -> dict[str, float]:
        """Per replica, when its breaker was first seen open after the database went away."""
        seen = self.breaker[
            (self.breaker["open"] == 1) & (self.breaker["t"] >= self.events["going"])
        ]
        first = seen.groupby("replica")["t"].min()
        return {str(replica): float(t) for replica, t in first.items()}

    def phases(self) -> pd.DataFrame:
        """`requests` with a `phase` per request: `before` the outage (answered before it
        began); `going away` (in flight when it began, or sent while the database was being
        taken away: a pod terminating on kind, milliseconds on local);
        `timing out` (the database gone, this replica's breaker still closed); `open` (its
        breaker open, the database still gone); `recovering` (the database back, the breaker
        not yet closed); `after` (every breaker closed again)."""
        opened = self.opened_at()
        going, down, back, closed = (self.events[k] for k in ("going", "down", "back", "closed"))

        def phase(row: Any) -> str:
            if row.t < going:  # sent before; answered before, or caught by the outage
                return "before" if row.t + row.latency_s < going else "going away"
            if row.t >= closed:
                return "after"
            if row.t >= back:
                return "recovering"
            if row.t >= opened.get(row.replica, back):
                return "open"
            return "going away" if row.t < down else "timing out"

        frame = self.requests.copy()
        frame["phase"] = [phase(row) for row in frame.itertuples()]
        return frame

    def summary(self) -> pd.DataFrame:
        """Per phase: requests, how many answered 200 and 503, median and max latency (ms)."""
        frame = self.phases()
        table = frame.groupby("phase", sort=False).agg(
            requests=("status", "size"),
            ok=("status", lambda s: int((s == 200).sum())),
            unavailable=("status", lambda s: int((s == 503).sum())),
            median_ms=("latency_s", lambda s: round(1000 * s.median())),
            max_ms=("latency_s", lambda s: round(1000 * s.max())),
        )
        order = ["before", "going away", "timing out", "open", "recovering", "after"]
        return table.reindex([p for p in order if p in table.index])


class _BreakerSampler:
    """Reads every replica's breaker gauge every SAMPLE_S s in a thread, until stopped."""

    def __init__(self, urls: list[str], clock: float) -> None:
        self.urls, self.clock = urls, clock
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="breaker-sampler", daemon=True)

    def __enter__(self) -> _BreakerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            for url in self.urls:
                try:
                    value = scrape.value(url, BREAKER, timeout=1.0)
                except LabError:
                    continue  # a replica that does not answer has no reading this time
                self.rows.append({"t": self.now(), "replica": url, "open": int(value)})

    def now(self) -> float:
        return time.monotonic() - self.clock

    def all_breakers(self, value: int) -> bool:
        """True once the latest sample of every replica reads `value`."""
        latest: dict[str, int] = {}
        for row in list(self.rows):
            latest[row["replica"]] = row["open"]
        return len(latest) == len(self.urls) and set(latest.values()) == {value}


def run(
    *,
    env: OutageLab,
    rate: float = 20.0,
    before_s: float = 2.0,
    open_s: float = 5.0,
    after_s: float = 2.0,
    timeout: float = 120.0,
) -> Outage:
    """The outage experiment: `before_s` of steady traffic, PostgreSQL taken away, `open_s`
    more once every replica's breaker is open (long enough for a failed half-open probe: the
    backend's BREAKER_RESET_S is 2 s), PostgreSQL back, then until every breaker has closed and
    `after_s` more. PostgreSQL is brought back on every path."""
    urls = list(env.endpoints.backends)
    clock = time.monotonic()
    events: dict[str, float] = {}
    with _BreakerSampler(urls, clock) as sampler:
        events["started"] = sampler.now()  # the load's own clock starts here, within ms
        with load.background(
            urls, rate=rate, duration=timeout, path=PATH, progress=False
        ) as traffic:
            time.sleep(before_s)  # steady traffic for a while: a window, not a wait
            events["going"] = sampler.now()
            try:
                database.take_down(env=env, timeout=timeout)
                events["down"] = sampler.now()
                poll(
                    lambda: sampler.all_breakers(1),
                    what=_("every replica's circuit breaker to open"),
                    timeout=timeout,
                    interval=SAMPLE_S,
                )
                time.sleep(open_s)  # breakers open: fast 503s, and a failed half-open probe
            finally:
                events["back"] = sampler.now()
                database.bring_back(env=env, timeout=timeout)
            poll(
                lambda: sampler.all_breakers(0),
                what=_("every replica's circuit breaker to close again"),
                timeout=timeout,
                interval=SAMPLE_S,
            )
            events["closed"] = sampler.now()
            time.sleep(after_s)
            traffic.stop()
    frame = traffic.result().df
    requests = pd.DataFrame(
        {
            "t": frame["scheduled_s"] + events.pop("started"),
            "latency_s": frame["latency_s"],
            "status": frame["status"],
            "replica": [url.removesuffix(PATH) for url in frame["url"]],
        }
    )
    return Outage(requests, pd.DataFrame(sampler.rows), events)
