"""Coalesced item reads (`backend.db.ItemReads`) against the session's real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from backend.breaker import BreakerState, CircuitOpenError
from backend.db import Database, DatabaseUnavailableError
from backend.settings import Settings
from lab.postgres import PostgresServer

MISSING = 2**63 - 1


def run_with_db(
    postgres: PostgresServer, body: Callable[[Database], Awaitable[None]], **env: str
) -> None:
    """Open a Database on `postgres`, run `body` with it, close it."""

    async def main() -> None:
        settings = Settings.from_env({**postgres.env(), **env})
        db = Database(settings, on_breaker_change=lambda _open: None)
        await db.open()
        try:
            await body(db)
        finally:
            await db.close()

    asyncio.run(main())


def checkouts(db: Database) -> int:
    """Connections handed out by the pool so far."""
    return db.pool.get_stats().get("requests_num", 0)


def test_reads_of_one_turn_share_one_query_and_each_gets_its_own_answer(
    postgres: PostgresServer,
) -> None:
    async def body(db: Database) -> None:
        a = await db.create_item("coalesced a", None)
        b = await db.create_item("coalesced b", "with a description")
        before = checkouts(db)
        found = await asyncio.gather(*(db.get_item(i) for i in (a.id, b.id, a.id, MISSING)))
        assert found == [a, b, a, None]  # a duplicate id and an absent one in the same batch
        assert checkouts(db) == before + 1
        assert await db.get_item(b.id) == b  # a lone read runs on its own
        assert checkouts(db) == before + 2

    run_with_db(postgres, body)


def test_reads_fail_fast_while_the_breaker_is_open(postgres: PostgresServer) -> None:
    async def body(db: Database) -> None:
        for _ in range(db.breaker.failures):
            db.breaker.before_call()
            db.breaker.record(ok=False)
        before = checkouts(db)
        with pytest.raises(CircuitOpenError):
            await db.get_item(1)
        assert checkouts(db) == before

    run_with_db(postgres, body)


def test_a_batch_past_db_timeout_fails_each_read_in_time_and_each_counts_for_the_breaker(
    postgres: PostgresServer,
) -> None:
    async def body(db: Database) -> None:
        loop = asyncio.get_running_loop()
        async with db.pool.connection() as blocker:  # holds a lock every read waits for
            await blocker.execute("BEGIN")
            await blocker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
            started = loop.time()
            batch = await asyncio.gather(
                *(db.get_item(i) for i in range(1, db.breaker.failures)), return_exceptions=True
            )
            waited = loop.time() - started
            assert db.breaker.state is BreakerState.CLOSED  # one failure short of opening
            with pytest.raises(DatabaseUnavailableError):
                await db.get_item(1)  # a lone read: the last consecutive failure
            assert db.breaker.state is BreakerState.OPEN
            await blocker.execute("ROLLBACK")
        assert all(isinstance(r, DatabaseUnavailableError) for r in batch), batch
        assert db.timeout_s <= waited < db.timeout_s + 1.5

    # The server's lock_timeout would end the waits before the deadline: turned off here.
    no_server_timeouts = "?options=-c%20lock_timeout%3D0%20-c%20statement_timeout%3D0"
    run_with_db(postgres, body, DB_TIMEOUT_S="0.5", DATABASE_URL=postgres.dsn + no_server_timeouts)
