"""HTTP handlers: health, metrics, items and CPU work."""

from __future__ import annotations

import time
from typing import Annotated

from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import JSONBody, PathParameter, QueryParameter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from backend.db import Database
from backend.models import Item, ItemPage, NewItem, WorkDone

MAX_ID = 2**63 - 1  # PostgreSQL BIGINT
MAX_PAGE = 100
MAX_OFFSET = 1_000_000
MAX_WORK_MS = 1000
ItemId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Item id (positive BIGINT).")]


class Lifecycle:
    """Process state readiness depends on besides the database."""

    def __init__(self) -> None:
        self.draining = False


@get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    """Liveness: the process answers (no database call)."""
    return {"status": "ok"}


@get("/health/ready", tags=["health"])
async def ready(
    db: NamedDependency[Database], lifecycle: NamedDependency[Lifecycle]
) -> dict[str, str]:
    """Readiness: 200 only when PostgreSQL answers and the process is not draining."""
    if lifecycle.draining:
        raise ServiceUnavailableException("Draining: this process is shutting down.")
    await db.ping()  # raises DatabaseUnavailableError → 503 problem details
    return {"status": "ok"}


@get("/metrics", tags=["metrics"], include_in_schema=False)
async def metrics(registry: NamedDependency[CollectorRegistry]) -> Response[bytes]:
    """Prometheus exposition of the app's registry."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@post("/api/items", tags=["items"])
async def create_item(db: NamedDependency[Database], data: JSONBody[NewItem]) -> Item:
    """Store an item; 201 with the stored item."""
    return await db.create_item(data.name, data.description)


@get("/api/items", tags=["items"])
async def list_items(
    db: NamedDependency[Database],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
) -> ItemPage:
    """A page of items ordered by id."""
    return ItemPage(items=await db.list_items(limit, offset), limit=limit, offset=offset)


@get("/api/items/{id:int}", tags=["items"])
async def get_item(db: NamedDependency[Database], id: ItemId) -> Item:
    """One item, or 404."""
    if (item := await db.get_item(id)) is None:
        raise NotFoundException(f"Item {id} does not exist.")
    return item


@delete("/api/items/{id:int}", tags=["items"])
async def delete_item(db: NamedDependency[Database], id: ItemId) -> None:
    """Delete an item; 204, or 404 when it does not exist."""
    if not await db.delete_item(id):
        raise NotFoundException(f"Item {id} does not exist.")


@get("/api/work", tags=["work"], sync_to_thread=True)
def work(ms: Annotated[int, QueryParameter(ge=0, le=MAX_WORK_MS)]) -> WorkDone:
    """Burn about `ms` milliseconds of CPU (for autoscaling demos); at most MAX_WORK_MS."""
    deadline = time.perf_counter() + ms / 1000
    iterations = 0
    while time.perf_counter() < deadline:
        iterations += 1
    return WorkDone(ms=ms, iterations=iterations)
