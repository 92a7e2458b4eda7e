"""PostgreSQL access: an async connection pool behind a circuit breaker, and the item queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection, generators
from psycopg import waiting as psycopg_waiting
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq.abc import PGcancelConn
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from backend.breaker import CircuitBreaker
from backend.models import Item
from backend.settings import Settings

# Any replica creating the schema holds this transaction-level advisory lock first, so
# concurrent `CREATE TABLE IF NOT EXISTS` (which races on the identity sequence) is serialized.
SCHEMA_LOCK_KEY = 7_311_947_021
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description TEXT CHECK (char_length(description) <= 2000),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
# Errors meaning "the database did not answer" (PoolTimeout is an OperationalError).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError)
ITEM_ROW = class_row(Item)  # rows as Item structs (built once, not per query)
SELECT_ITEMS = "SELECT id, name, description, created_at FROM items"
# How often psycopg's wait for a cancel request wakes up between socket events (its own value).
CANCEL_POLL_S = 0.1
log = logging.getLogger("backend.db")


class DatabaseUnavailableError(Exception):
    """PostgreSQL did not answer in time (down, restarting, frozen, overloaded).

    Raised while serving, its message is shown to clients: it never names the server
    (host:port/dbname) nor carries psycopg's text (which does); those go to the log.
    """


def describe_target(url: str) -> str:
    """host:port/dbname of a connection string, without credentials (for messages)."""
    parts = conninfo_to_dict(url)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


async def check_if_suspect(conn: AsyncConnection[Any]) -> None:
    """Checkout check that costs a round trip only when the connection looks broken.

    An idle connection has nothing to read unless the server closed it (restart, crash,
    termination) or sent an asynchronous notice; only then run psycopg_pool's full check,
    which raises (and the pool discards the connection) when it is dead.

    poll() works for any descriptor (select() fails from fd 1024 on, as in a process with
    many open client sockets). A failure is logged at WARNING (the pool logs it at INFO).
    """
    try:
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN)
        if poller.poll(0):
            await AsyncConnectionPool.check_connection(conn)
    except Exception as exc:
        log.warning("discarding a pooled connection that failed its check: %r", exc)
        raise


def session_options(url: str, timeout_s: float) -> str:
    """libpq `options` for the pool's sessions: the server ends any statement after
    `timeout_s` (nothing runs on for a client that gave up) and any lock wait after half of
    it, while the request still has time to answer 503 on a healthy connection (a lock wait
    that reaches the deadline costs a severed connection and a reconnect). Options already
    in `url` come after these, so they win."""
    ms = round(timeout_s * 1000)
    own = conninfo_to_dict(url).get("options", "")
    return f"-c statement_timeout={ms} -c lock_timeout={ms // 2} {own}".rstrip()


def sever(conn: AsyncConnection[Any]) -> PGcancelConn | None:
    """Shut down the socket of a connection whose query outlived its deadline; return a
    cancel request for that query (None when the connection is gone or cannot make one).

    The query then fails at once and the pool discards the broken connection when it comes
    back. The cancel request is made first (it needs the live connection's key) and is sent
    apart (`Database.cancel`): waiting for it here would hold the caller up to the connect
    timeout against a frozen server, and without it the server would go on running the
    query (e.g. waiting for a lock) for a client that is gone. (psycopg's `cancel_safe`
    cannot be used: by the time it runs, the severed connection is closed, and it then
    sends nothing.)
    """
    try:
        cancel = conn.pgconn.cancel_conn()
    except psycopg.Error:  # closed, or a libpq without the cancel API (< 17)
        cancel = None
    try:
        stuck = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (OSError, psycopg.OperationalError):
        return cancel  # already closed
    with stuck, contextlib.suppress(OSError):  # OSError: not connected any more
        stuck.shutdown(socket.SHUT_RDWR)
    return cancel


class Database:
    """The connection pool (opened by `open()`, not in the constructor) and the queries."""

    def __init__(self, settings: Settings, on_breaker_change: Callable[[bool], None]) -> None:
        self.timeout_s = settings.db_timeout_s
        self.startup_timeout_s = settings.db_startup_timeout_s
        self.target = describe_target(settings.database_url)
        self.connect_timeout_s = max(2, round(settings.db_timeout_s))
        self.pool = AsyncConnectionPool(
            settings.database_url,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            open=False,
            # A connection broken by a PostgreSQL restart is discarded at checkout, not used.
            check=check_if_suspect,
            kwargs={
                "autocommit": True,
                "connect_timeout": self.connect_timeout_s,
                "options": session_options(settings.database_url, settings.db_timeout_s),
            },
            timeout=settings.db_timeout_s,
            reconnect_timeout=settings.db_reconnect_timeout_s,
            name="ironclad",
        )
        self.breaker = CircuitBreaker(
            settings.breaker_failures, settings.breaker_reset_s, on_change=on_breaker_change
        )
        self._reads = ItemReads(self)
        self._cancels: set[asyncio.Task[None]] = set()  # cancel requests being sent
        self.opened = False  # pool ready and schema there

    async def open(self) -> None:
        """Open the pool, wait for its first connections, create the schema if missing (once:
        later calls return at once)."""
        if self.opened:
            return
        try:
            await self.pool.open(wait=True, timeout=self.startup_timeout_s)
        except PoolTimeout as exc:
            await self.pool.close()
            raise DatabaseUnavailableError(
                f"PostgreSQL at {self.target} did not accept connections within "
                f"{self.startup_timeout_s:g} s ({exc}); check that it runs and that "
                "DATABASE_URL or POSTGRES_HOST/PORT/DB/USER/PASSWORD are right."
            ) from exc
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            await conn.execute(SCHEMA)
        self.opened = True

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(
        self, calls: int = 1, joined_at: float | None = None
    ) -> AsyncIterator[AsyncConnection[tuple[object, ...]]]:
        """A pooled connection, through the circuit breaker, for at most `timeout_s` in all.

        The pool wait has the pool's own timeout; a connection still in use at the deadline
        is severed (see `sever`), so the caller fails within the bound even when the server
        hangs, and the pool replaces the connection in the background.

        With `joined_at` (a coalesced read, `ItemReads`), the use serves `calls` requests that
        each passed the breaker when they joined, the first at loop time `joined_at`: the
        bound counts from then and the outcome counts once per request.
        """
        loop = asyncio.get_running_loop()
        if joined_at is None:
            self.breaker.before_call()
            joined_at = loop.time()
        deadline = joined_at + self.timeout_s
        try:
            async with self.pool.connection(max(0.0, deadline - loop.time())) as conn:
                timer = loop.call_at(deadline, self._expire, conn)
                try:
                    yield conn
                finally:
                    timer.cancel()
        except UNAVAILABLE as exc:
            self.breaker.record(ok=False, calls=calls)
            late = loop.time() >= deadline
            log.warning(
                "PostgreSQL at %s did not answer%s: %r",
                self.target,
                f" within {self.timeout_s:g} s" if late else "",
                exc,
            )
            raise DatabaseUnavailableError(
                "PostgreSQL did not answer in time" if late else "PostgreSQL did not answer"
            ) from exc
        self.breaker.record(ok=True)

    def _expire(self, conn: AsyncConnection[Any]) -> None:
        """At a use's deadline: sever the connection, cancel its query in the background."""
        if (cancel := sever(conn)) is not None:
            task = asyncio.get_running_loop().create_task(self.cancel(cancel))
            self._cancels.add(task)
            task.add_done_callback(self._cancels.discard)

    async def cancel(self, cancel: PGcancelConn) -> None:
        """Send a cancel request without blocking the loop (libpq's non-blocking cancel API,
        driven the way psycopg's own `cancel_safe` drives it), for at most the connect
        timeout; a failure is logged, and the statement timeout still ends the query."""
        try:
            cancel.start()
            await psycopg_waiting.wait_conn_async(
                generators.cancel(cancel), interval=CANCEL_POLL_S, timeout=self.connect_timeout_s
            )
        except psycopg.Error as exc:  # also the wait's timeout
            log.warning("could not cancel a timed-out query on %s: %r", self.target, exc)
        finally:
            cancel.finish()

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def _items(
        self,
        query: LiteralString,
        params: tuple[object, ...],
        calls: int = 1,
        joined_at: float | None = None,
    ) -> list[Item]:
        async with (
            self.connection(calls, joined_at) as conn,
            conn.cursor(row_factory=ITEM_ROW) as cur,
        ):
            await cur.execute(query, params)
            return await cur.fetchall()

    async def create_item(self, name: str, description: str | None) -> Item:
        (item,) = await self._items(
            "INSERT INTO items (name, description) VALUES (%s, %s) "
            "RETURNING id, name, description, created_at",
            (name, description),
        )
        return item

    async def get_item(self, item_id: int) -> Item | None:
        """The item, or None; reads of one event-loop turn share one query (`ItemReads`)."""
        return await self._reads.get(item_id)

    async def items_by_ids(self, ids: list[int], calls: int, joined_at: float) -> list[Item]:
        """The items with these ids (absent ones left out), for `calls` coalesced reads.

        One id takes the plain `id = %s` query: adapting a one-element array costs a lone
        read ~50 µs of CPU more (bench/README.md, "Backend").
        """
        if len(ids) == 1:
            query: LiteralString = f"{SELECT_ITEMS} WHERE id = %s"
            params: tuple[object, ...] = (ids[0],)
        else:
            query, params = f"{SELECT_ITEMS} WHERE id = ANY(%s::bigint[])", (ids,)
        return await self._items(query, params, calls, joined_at)

    async def list_items(self, limit: int, offset: int) -> list[Item]:
        return await self._items(
            f"{SELECT_ITEMS} ORDER BY id LIMIT %s OFFSET %s",
            (limit, offset),
        )

    async def delete_item(self, item_id: int) -> bool:
        async with self.connection() as conn:
            cur = await conn.execute("DELETE FROM items WHERE id = %s", (item_id,))
        return cur.rowcount == 1


class ItemReads:
    """Item reads by id, the reads of one event-loop turn answered by one query (DataLoader).

    The first read of a turn opens a batch and creates the task that runs it on the next turn
    (no timer: a lone read waits one turn, microseconds); reads made in the meantime join
    it. One `WHERE id = ANY(...)` query on one pooled connection then answers them all: under
    load one pool checkout and one round trip serve many requests (bench/README.md,
    "Backend"). Per request nothing else changes: each passes the circuit breaker when it
    joins (fails fast while open, a single probe when half-open) and counts once in the
    outcome; the DB_TIMEOUT_S bound counts from the batch's first read; an absent id is None
    (404) for its own request; a failure fails every read of the batch.

    Not aiodataloader (the asyncio DataLoader): it binds an event loop when constructed (here
    before the server's loop exists), creates two tasks and waits three turns per batch, and
    a cancelled batch leaves its readers waiting forever (it catches Exception only).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._batch: dict[int, list[asyncio.Future[Item | None]]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # running batches (the loop keeps none)

    async def get(self, item_id: int) -> Item | None:
        self._db.breaker.before_call()
        loop = asyncio.get_running_loop()
        if self._batch is None:
            self._batch = {}
            task = loop.create_task(self._run(self._batch, loop.time()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        future: asyncio.Future[Item | None] = loop.create_future()
        self._batch.setdefault(item_id, []).append(future)
        return await future

    async def _run(
        self, batch: dict[int, list[asyncio.Future[Item | None]]], joined_at: float
    ) -> None:
        self._batch = None  # reads from now on open the next batch
        futures = [future for waiting in batch.values() for future in waiting]
        try:
            items = await self._db.items_by_ids(list(batch), len(futures), joined_at)
        except BaseException as exc:  # also cancellation: no reader may wait forever
            for future in futures:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            if not isinstance(exc, Exception):
                raise
            return  # the readers got the exception
        found = {item.id: item for item in items}
        for item_id, waiting in batch.items():
            for future in waiting:
                if not future.done():
                    future.set_result(found.get(item_id))
