"""The HTTP server: uvicorn with a request-read deadline, a connection cap and a draining stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import uvicorn
from litestar.concurrency import set_asyncio_executor
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.app import Backend, open_database
from backend.db import DatabaseUnavailableError
from backend.logs import flush_logs
from backend.settings import Settings

log = logging.getLogger("backend")
SWEEP_EVERY_TICKS = 10  # uvicorn ticks every 0.1 s: look for slow clients once a second
# The request target liveness probes send; it is answered even at the connection cap.
LIVENESS_PATH = b"/health/live"
# The cyclic GC collects its youngest generation whenever 700 more container objects exist than
# at the last collection (CPython's default). With requests in flight that count is crossed all
# the time, and every collection walks the objects of all requests in flight (every tenth also
# the older generation): ~30 µs of CPU per item read under load, a fifth of it (gc.callbacks
# timing, bench/README.md "Backend"). At 7000 a steady load triggers (almost) no collection,
# and real cyclic garbage is still collected once it piles up.
GC_GEN0_THRESHOLD = 7000
# Threads that run the synchronous handlers (/api/work, the memory hog): a fixed number, all
# started before serving. Litestar would otherwise use the loop's default executor, which
# starts threads when requests need them; under RLIMIT_AS a memory hog could take the address
# space a new thread's stack needs, and the replica stayed up answering 500 "can't start new
# thread" (issue 20 item 6). More concurrent /api/work requests than this wait their turn
# (they hold the GIL anyway).
WORKER_THREADS = 8
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that remembers since when it waits for a request's bytes.

    `reading_since` is the event-loop time the connection opened (first request) or the first
    byte of the next request arrived, and None once the whole request (headers and any body)
    has arrived; BackendServer closes connections whose request takes longer than the read
    timeout. uvicorn alone bounds neither: it has no header timeout, and its keep-alive timer,
    armed when a response completes, is cancelled by any byte received, so a body the app
    never reads (a GET with a Content-Length) could hold a connection forever.

    Liveness (`GET /health/live`, the exact path probes send) is exempt from the connection
    cap: a process that sheds load is alive, and restarting it would drop every connection.
    """

    reading_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.reading_since = self.loop.time()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.reading_since is None:
            self.reading_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self.limit_concurrency = (
            None if self.url == LIVENESS_PATH else self.config.limit_concurrency
        )
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_since = None
        super().on_message_complete()

    def reading_late(self, started_before: float) -> bool:
        """Whether a request began before `started_before`, is still incomplete, and no app
        is answering it (an app reading a body bounds it itself: observe.ObservedApp's 408)."""
        return (
            self.reading_since is not None
            and self.reading_since < started_before
            and (self.cycle is None or self.cycle.response_complete)
        )


class BackendServer(uvicorn.Server):
    """uvicorn server that waits for PostgreSQL first, drains on the first SIGTERM/SIGINT and
    closes slow clients.

    Start-up: `serve` opens the database before uvicorn starts (`wait_for_database`); a
    SIGTERM/SIGINT meanwhile stops the process at once, `stopped_by` recording the signal.

    Every 0.1 s tick also writes out buffered log lines (backend.logs.flush_logs); serving
    raises the garbage collector's first threshold (GC_GEN0_THRESHOLD).

    Draining: readiness turns 503 immediately; requests (in flight and new ones) are still
    served for `drain_delay_s` so load balancers can notice; then uvicorn's graceful shutdown
    waits for the requests in flight, the lifespan closes the pool, and the process exits
    with code 0. A second signal stops at once (uvicorn's own behaviour).
    """

    def __init__(self, config: uvicorn.Config, backend: Backend, settings: Settings) -> None:
        super().__init__(config)
        self.backend = backend
        self.drain_delay_s = settings.drain_delay_s
        self.read_timeout_s = settings.read_timeout_s
        self.stop_at: float | None = None
        self.stopped_by: signal.Signals | None = None  # a stop signal while waiting for PostgreSQL

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        if not await self.wait_for_database():
            return  # `started` stays False
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        await super().serve(sockets)  # its lifespan finds the database open

    async def wait_for_database(self) -> bool:
        """Open the backend's database (`open_database`), cut short by SIGTERM/SIGINT; return
        whether to serve.

        uvicorn acts on a signal only in its main loop, once its start-up (the lifespan) is
        over: a replica waiting there for PostgreSQL held a SIGTERM until DB_STARTUP_TIMEOUT_S
        had passed (on Kubernetes, up to the pod's whole terminationGracePeriodSeconds). Here a
        signal cancels the wait, the pool is closed and `stopped_by` records the signal. A
        database that never comes is logged by `open_database`.
        """
        db = self.backend.database
        loop = asyncio.get_running_loop()
        opening = asyncio.ensure_future(open_database(db))

        def stop(signum: signal.Signals) -> None:
            self.stopped_by = self.stopped_by or signum
            opening.cancel()

        watching = threading.current_thread() is threading.main_thread()  # else no signals
        for signum in STOP_SIGNALS if watching else ():
            loop.add_signal_handler(signum, stop, signum)
        log.info("waiting for PostgreSQL at %s (at most %g s)", db.target, db.startup_timeout_s)
        flush_logs()
        try:
            await opening
        except DatabaseUnavailableError:
            return False
        except asyncio.CancelledError:
            if self.stopped_by is None:
                raise
        finally:
            for signum in STOP_SIGNALS if watching else ():
                loop.remove_signal_handler(signum)
        if self.stopped_by is not None:  # also when the signal came as the wait ended
            log.info(
                "%s received while waiting for PostgreSQL at %s: stopping before serving",
                self.stopped_by.name,
                db.target,
            )
            await db.close()
            return False
        return True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_at is not None or sig not in STOP_SIGNALS:
            super().handle_exit(sig, frame)
            return
        self.backend.start_draining()
        self.stop_at = time.monotonic() + self.drain_delay_s

    async def on_tick(self, counter: int) -> bool:
        flush_logs()
        if counter % SWEEP_EVERY_TICKS == 0:
            self.close_slow_connections()
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            return True
        return await super().on_tick(counter)

    def close_slow_connections(self) -> None:
        """Close connections that have not sent a complete request within the read timeout."""
        started_before = asyncio.get_running_loop().time() - self.read_timeout_s
        slow = [
            conn
            for conn in self.server_state.connections
            if isinstance(conn, RequestDeadlineProtocol) and conn.reading_late(started_before)
        ]
        for conn in slow:
            conn.transport.close()
        if slow:
            log.warning(
                "closed %d connection(s) that sent no complete request within %g s",
                len(slow),
                self.read_timeout_s,
            )


def start_worker_threads(count: int = WORKER_THREADS) -> ThreadPoolExecutor:
    """An executor whose `count` threads are all running (each started by a task that waits
    for all the others, so none can reuse an idle thread)."""
    executor = ThreadPoolExecutor(count, thread_name_prefix="backend-worker")
    everyone = threading.Barrier(count, timeout=30)
    for started in [executor.submit(everyone.wait) for _ in range(count)]:
        started.result()
    return executor


def build_server(backend: Backend, settings: Settings) -> BackendServer:
    """One uvicorn worker serving `backend` with the bounds of `settings`.

    `limit_concurrency`: once the process holds `max_connections` connections (or requests in
    flight), uvicorn answers every new request but liveness 503 with `Connection: close`
    before the app. Idle keep-alive connections are closed after 5 s (`timeout_keep_alive`),
    requests that take longer than `read_timeout_s` to arrive a second after at most.
    Synchronous handlers run on WORKER_THREADS threads started here.
    """
    set_asyncio_executor(start_worker_threads())
    config = uvicorn.Config(
        backend,
        host=settings.host,
        port=settings.port,
        http=RequestDeadlineProtocol,
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        # Nothing reads the client address: skip uvicorn's X-Forwarded-* middleware per request.
        proxy_headers=False,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    return BackendServer(config, backend, settings)
