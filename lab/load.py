"""HTTP load (aiohttp): open-loop at a fixed rate without coordinated omission, or closed-loop.

Open loop (`rate=`): request i is due at t0 + i/rate whatever happened to earlier requests, and
its latency is measured from that scheduled time, so a stalled server or a full connection pool
shows up as latency instead of silently lowering the rate. Closed loop (`concurrency=`, with a
number of `requests`): that many connections each send their next request once the last one is
answered; however slow the server or this machine, nothing piles up and nothing is dropped for
lateness, so every request is sent and its outcome counted (what a count compared with the
server's own needs). The load always runs in its own thread with its own event loop, which
works the same in a script and inside a Jupyter kernel.

Load against a lab that is gone fails fast: when every base URL refused a connection before
any request was answered, the load stops and raises LabNotRunningError (instead of a frame of
connection errors and a NaN p95). Refusals after the first answer are recorded like any error.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
import pandas as pd

from lab.errors import LabNotRunningError
from lab.i18n import _, ngettext
from lab.progress import bar as progress_bar

NOT_SENT = "not sent: max_in_flight requests already in flight"
LATE = "not sent: the generator fell behind its schedule by more than the timeout"
_MAX_SLEEP = 0.1  # the scheduler wakes at least this often to notice stop()


def timeout_error(timeout: float) -> str:
    """The error of a request that got no answer within `timeout` of its scheduled time."""
    return f"timeout: no answer {timeout:g} s after the scheduled time"


@dataclass(frozen=True)
class LoadPlan:
    """What to send: `requests` requests, round-robin over `urls`, at `rate` per second (open
    loop) or over `concurrency` connections each waiting for its last answer (closed loop)."""

    urls: tuple[str, ...]
    rate: float | None
    requests: int
    path: str = "/api/items"
    method: str = "GET"
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    max_in_flight: int = 1000
    connections: int | None = None
    fresh_connections: bool = False  # a new connection per request (a Service balances each)
    concurrency: int | None = None  # closed loop: requests in flight at a time (rate None)

    @classmethod
    def build(
        cls,
        urls: str | Sequence[str],
        *,
        rate: float | None = None,
        duration: float | None = None,
        requests: int | None = None,
        concurrency: int | None = None,
        **options: Any,
    ) -> LoadPlan:
        """Check the bounds: a positive rate and at least one of duration / requests, or a
        positive concurrency and a number of requests."""
        url_list = (urls,) if isinstance(urls, str) else tuple(urls)
        if not url_list:
            raise ValueError("give at least one base URL")
        if (rate is None) == (concurrency is None):
            raise ValueError(
                "give rate (open loop, requests per second) or concurrency (closed loop, "
                "requests in flight at a time), one of them"
            )
        if concurrency is not None:
            if not concurrency >= 1 or requests is None or duration is not None:
                raise ValueError(
                    f"a closed loop needs concurrency >= 1 (not {concurrency}) and a number of "
                    "requests (no duration)"
                )
            url_tuple = tuple(u.rstrip("/") for u in url_list)
            return cls(url_tuple, None, requests, concurrency=concurrency, **options)
        if rate is None or not rate > 0:  # None: ruled out above (for the type checker)
            raise ValueError(f"rate must be positive, not {rate}")
        if duration is None and requests is None:
            raise ValueError("bound the load: give duration (s), requests, or both")
        count = min(
            requests if requests is not None else math.inf,
            round(rate * duration) if duration is not None else math.inf,
        )
        return cls(
            urls=tuple(u.rstrip("/") for u in url_list), rate=rate, requests=int(count), **options
        )

    def url(self, i: int) -> str:
        """The URL of request i (round-robin over the base URLs)."""
        return self.urls[i % len(self.urls)] + self.path

    def scheduled(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Scheduled send time of every request, in seconds from the start (closed loop: NaN,
        each is due when it is sent)."""
        if self.rate is None:
            return np.full(self.requests, np.nan)
        return np.arange(self.requests, dtype=np.float64) / self.rate


@dataclass
class LoadResult:
    """One row per request: scheduled_s, sent_s, latency_s (from scheduled), status, error, url
    (closed loop: scheduled_s is when a connection was free to send it)."""

    plan: LoadPlan
    df: pd.DataFrame

    def summary(self) -> pd.Series:
        """requests, target/achieved rate, throughput, error ratio, latency percentiles (s)."""
        return summarize(self.df, self.plan.rate)


def summarize(df: pd.DataFrame, target_rate: float | None) -> pd.Series:
    """Summary of a per-request frame (see LoadResult); `target_rate` None for a closed loop
    (then target_rate is NaN and achieved_rate the requests sent over the load's length)."""
    answered = df[df["status"].notna()]
    sent = df["sent_s"].dropna()
    last_done = (df["scheduled_s"] + df["latency_s"]).max()
    failed = df["error"].notna() | (df["status"].fillna(0) >= 500)
    quantiles = answered["latency_s"].quantile([0.5, 0.95, 0.99]) if len(answered) else None
    # requests sent per second, over the span they were sent in (one interval per request)
    span = last_done if target_rate is None else sent.max() + 1 / target_rate
    return pd.Series(
        {
            "requests": len(df),
            "target_rate": math.nan if target_rate is None else target_rate,
            "achieved_rate": len(sent) / span if len(sent) and span > 0 else 0.0,
            "throughput": len(answered) / last_done if len(answered) and last_done > 0 else 0.0,
            "error_ratio": float(failed.mean()) if len(df) else 0.0,
            "p50": float(quantiles.iloc[0]) if quantiles is not None else math.nan,
            "p95": float(quantiles.iloc[1]) if quantiles is not None else math.nan,
            "p99": float(quantiles.iloc[2]) if quantiles is not None else math.nan,
            "send_lag_p99": float((df["sent_s"] - df["scheduled_s"]).quantile(0.99))
            if len(sent)
            else math.nan,
        },
        dtype=object,
    )


class BackgroundLoad:
    """Load running in a background thread (`_thread`) that answers through `_future`:
    `.result()` waits for it, `.stop()` ends it early. `LoadHandle` sends it from here;
    `lab.service_load.JobLoad` from a Job in the cluster."""

    plan: LoadPlan
    _future: Future[LoadResult]
    _thread: threading.Thread

    def stop(self) -> None:
        """Schedule no more requests; those in flight finish (or time out)."""
        raise NotImplementedError

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end without raising its error; True when it has ended."""
        self._thread.join(timeout)
        return self.done()

    def result(self, timeout: float | None = None) -> LoadResult:
        """Wait for the load to end and return its result."""
        return self._future.result(timeout)


class LoadHandle(BackgroundLoad):
    """Load sent from this process, in a background thread of its own (its own event loop)."""

    def __init__(self, plan: LoadPlan, *, progress: bool = True) -> None:
        self.plan = plan
        self._progress = progress
        self._stop = threading.Event()
        self._future: Future[LoadResult] = Future()
        self._thread = threading.Thread(target=self._main, name="lab-load", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._future.set_result(asyncio.run(_drive(self.plan, self._stop, self._progress)))
        except BaseException as exc:
            self._future.set_exception(exc)

    def stop(self) -> None:
        """Schedule no more requests; those in flight finish (or time out)."""
        self._stop.set()


def start(
    urls: str | Sequence[str],
    *,
    rate: float | None = None,
    duration: float | None = None,
    requests: int | None = None,
    concurrency: int | None = None,
    progress: bool = True,
    **options: Any,
) -> LoadHandle:
    """Start load in the background and return its handle (options: see LoadPlan)."""
    plan = LoadPlan.build(
        urls, rate=rate, duration=duration, requests=requests, concurrency=concurrency, **options
    )
    return LoadHandle(plan, progress=progress)


def run(
    urls: str | Sequence[str],
    *,
    rate: float | None = None,
    duration: float | None = None,
    requests: int | None = None,
    concurrency: int | None = None,
    progress: bool = True,
    **options: Any,
) -> LoadResult:
    """Send load and wait for it: `run(env.endpoints.backends, rate=50, duration=30)` (open
    loop), or `run(urls, requests=1500, concurrency=3)` (closed loop: 3 connections, each
    sending its next request once the last one is answered; every request sent).

    Options (LoadPlan): path="/api/items", method="GET", body (JSON), headers, timeout=10 s
    per request (counted from its scheduled time; closed loop: from its send),
    max_in_flight=1000 (requests due while that many are in flight are recorded as errors,
    not sent), connections (pool size, default concurrency or max_in_flight),
    fresh_connections=False (True: every request on a new connection,
    so a Service's kube-proxy picks an endpoint for each instead of once per pooled one).
    """
    handle = start(
        urls,
        rate=rate,
        duration=duration,
        requests=requests,
        concurrency=concurrency,
        progress=progress,
        **options,
    )
    try:
        return handle.result()
    except BaseException:  # e.g. KeyboardInterrupt in a notebook: stop sending, then re-raise
        handle.stop()
        raise


@contextmanager
def background(
    urls: str | Sequence[str],
    *,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    progress: bool = True,
    **options: Any,
) -> Iterator[LoadHandle]:
    """Run load while the block waits on something else; leaving the block stops the load.

    Call `handle.result()` inside the block to let the whole load run, or after it for what
    was sent until the block ended.
    """
    handle = start(
        urls, rate=rate, duration=duration, requests=requests, progress=progress, **options
    )
    try:
        yield handle
    finally:
        handle.stop()
        handle.wait()


@dataclass
class _Record:
    """What happened to each request of a plan (NaN / 0 / None until it happens)."""

    scheduled: np.ndarray[Any, np.dtype[np.float64]]
    sent: np.ndarray[Any, np.dtype[np.float64]]
    done: np.ndarray[Any, np.dtype[np.float64]]
    status: np.ndarray[Any, np.dtype[np.int64]]
    errors: list[str | None]
    answered: bool = False  # any request got an HTTP answer
    refused: set[str] = field(default_factory=set)  # base URLs that refused a connection

    @classmethod
    def empty(cls, plan: LoadPlan) -> _Record:
        n = plan.requests
        return cls(
            plan.scheduled(),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.zeros(n, dtype=np.int64),
            [None] * n,
        )

    def lab_gone(self, plan: LoadPlan) -> bool:
        """Every base URL refused a connection and nothing ever answered."""
        return not self.answered and self.refused >= set(plan.urls)

    def frame(self, plan: LoadPlan, count: int) -> pd.DataFrame:
        """The first `count` requests, one row each (latency counted from the schedule)."""
        return pd.DataFrame(
            {
                "scheduled_s": self.scheduled[:count],
                "sent_s": self.sent[:count],
                "latency_s": self.done[:count] - self.scheduled[:count],
                "status": pd.Series(self.status[:count], dtype="Int64").mask(lambda s: s == 0),
                "error": pd.Series(self.errors[:count], dtype=object),
                "url": [plan.url(j) for j in range(count)],
            }
        )


async def _request(
    session: aiohttp.ClientSession, plan: LoadPlan, i: int, t0: float, record: _Record
) -> None:
    """Send request `i` unless it is already past its timeout; record what happened."""
    loop = asyncio.get_running_loop()
    now = loop.time() - t0
    deadline = record.scheduled[i] + plan.timeout  # the timeout counts from the schedule
    budget = deadline - now
    if budget <= 0:
        record.errors[i] = LATE
        return
    record.sent[i] = now
    try:
        async with session.request(
            plan.method, plan.url(i), json=plan.body, timeout=aiohttp.ClientTimeout(total=budget)
        ) as resp:
            await resp.read()
            record.answered = True
            if loop.time() - t0 > deadline:
                # read after its deadline: a busy loop ran the answer before the timer that
                # should have ended the wait; a client with this timeout had given up
                record.errors[i] = timeout_error(plan.timeout)
            else:
                record.status[i] = resp.status
    except TimeoutError:
        record.errors[i] = timeout_error(plan.timeout)
    except aiohttp.ClientError as exc:
        record.errors[i] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
            exc.os_error, ConnectionRefusedError
        ):
            record.refused.add(plan.urls[i % len(plan.urls)])
    record.done[i] = loop.time() - t0


async def _schedule(
    plan: LoadPlan,
    rate: float,
    send: Callable[[int, float], Awaitable[None]],
    record: _Record,
    stop: threading.Event,
    bar: Any,
) -> int:
    """Start request i at t0 + i/rate (open loop: never waiting for answers), at most
    `max_in_flight` at once, until the lab turns out to be gone; wait for those in flight;
    return how many were due."""
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()

    async def counted(j: int, t0: float) -> None:
        await send(j, t0)
        bar.update()

    t0 = loop.time()
    i = 0
    while i < plan.requests and not stop.is_set() and not record.lab_gone(plan):
        due = min(plan.requests, math.floor((loop.time() - t0) * rate) + 1)
        for j in range(i, due):
            if len(in_flight) >= plan.max_in_flight:
                record.errors[j] = NOT_SENT
                bar.update()
                continue
            task = loop.create_task(counted(j, t0))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        i = max(i, due)
        if i < plan.requests:
            await asyncio.sleep(min(_MAX_SLEEP, max(0.0, t0 + record.scheduled[i] - loop.time())))
    if in_flight:
        await asyncio.wait(set(in_flight))
    return i


async def _closed_loop(
    plan: LoadPlan,
    send: Callable[[int, float], Awaitable[None]],
    record: _Record,
    stop: threading.Event,
    bar: Any,
) -> int:
    """Send the requests in order from `plan.concurrency` workers, each sending its next one
    once the last was answered (its scheduled time is when it is sent), until all are sent,
    stop() or the lab turns out to be gone; return how many were sent (the first ones)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < plan.requests and not stop.is_set() and not record.lab_gone(plan):
            i, sent = sent, sent + 1
            record.scheduled[i] = loop.time() - t0
            await send(i, t0)
            bar.update()

    await asyncio.gather(*(worker() for _ in range(plan.concurrency or 1)))
    return sent


async def _drive(plan: LoadPlan, stop: threading.Event, progress: bool) -> LoadResult:
    """Run `plan`: one HTTP session, the schedule, a progress bar; the result as a frame."""
    record = _Record.empty(plan)
    connector = aiohttp.TCPConnector(
        limit=plan.connections or plan.concurrency or plan.max_in_flight,
        limit_per_host=0,
        force_close=plan.fresh_connections,
    )
    session = aiohttp.ClientSession(
        connector=connector, headers=dict(plan.headers), auto_decompress=False
    )
    urls = len(plan.urls)
    if plan.rate:
        description = ngettext(
            "load {rate}/s → {count} URL", "load {rate}/s → {count} URLs", urls
        ).format(rate=f"{plan.rate:g}", count=urls)
    else:
        description = ngettext(
            "load {concurrency} at a time → {count} URL",
            "load {concurrency} at a time → {count} URLs",
            urls,
        ).format(concurrency=plan.concurrency, count=urls)
    with progress_bar(
        total=plan.requests, unit="req", disable=not progress, leave=False, desc=description
    ) as bar:
        async with session:

            async def send(i: int, t0: float) -> None:
                await _request(session, plan, i, t0, record)

            if plan.rate is None:
                count = await _closed_loop(plan, send, record, stop, bar)
            else:
                count = await _schedule(plan, plan.rate, send, record, stop, bar)
            if count < plan.requests:  # stopped on purpose: say so, not "585/16200"
                bar.desc = _("{load}, stopped after {count} of the {planned} planned").format(
                    load=description, count=count, planned=plan.requests
                )
                bar.total = count
    if record.lab_gone(plan):
        raise LabNotRunningError(
            _(
                "The lab is not running: every backend refused the connection ({urls}); the "
                "load stopped after {count} of {planned} requests."
            ).format(urls=", ".join(plan.urls), count=count, planned=plan.requests),
            _(
                "`lab.connect()` starts it again (or reconnects to a running one): `env = "
                "lab.connect()`, then run this cell again."
            ),
        )
    return LoadResult(plan=plan, df=record.frame(plan, count))
