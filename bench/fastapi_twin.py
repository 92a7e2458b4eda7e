"""The peer of the backend benchmark: a minimal FastAPI + psycopg-pool app (not product code).

Same routes and query as the backend's `GET /health/live` and `GET /api/items/{id}`, the same
pool size, no metrics, no chaos, no breaker. Served by `uvicorn bench.fastapi_twin:app`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncConnectionPool(
        os.environ["DATABASE_URL"], min_size=4, max_size=10, kwargs={"autocommit": True}
    ) as pool:
        await pool.wait()
        app.state.pool = pool
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/items/{item_id}")
async def get_item(item_id: int, request: Request) -> dict[str, Any]:
    async with (
        request.app.state.pool.connection() as conn,
        conn.cursor(row_factory=dict_row) as cur,
    ):
        await cur.execute(
            "SELECT id, name, description, created_at FROM items WHERE id = %s", (item_id,)
        )
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, f"Item {item_id} does not exist.")
    return row
