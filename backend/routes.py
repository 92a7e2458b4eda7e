"""HTTP handlers: health, metrics, items and CPU work."""

from __future__ import annotations

import time
from itertools import chain
from typing import Annotated, Any

import msgspec
from litestar import HttpMethod, MediaType, Request, Response, delete, get, post, route
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ServiceUnavailableException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response.base import ASGIResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from backend.chaos import inject_chaos
from backend.db import Database
from backend.models import Item, ItemPage, NewItem, WorkDone
from backend.problems import problem_responses

MAX_ID = 2**63 - 1  # PostgreSQL BIGINT
MAX_PAGE = 100
MAX_OFFSET = 1_000_000
MAX_WORK_MS = 1000
# Litestar writes `le` into the document as a float (2^63 - 1 becomes 2^63, an id the server
# refuses): the exact integer bounds and the 64-bit format go in as they are.
ItemId = Annotated[
    int,
    PathParameter(
        ge=1,
        le=MAX_ID,
        description="Item id (positive BIGINT).",
        schema_extra={"minimum": 1, "maximum": MAX_ID, "format": "int64"},
    ),
]


class Lifecycle:
    """Process state readiness depends on besides the database."""

    def __init__(self) -> None:
        self.draining = False


class UnsupportedMediaTypeError(HTTPException):
    """The request body is not declared as JSON (415)."""

    status_code = 415


# A guard is `async def`: Litestar runs a plain `def` guard in a worker thread, which cost
# ~200 µs of CPU per request (bench/README.md, "Backend").
async def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a body must be sent as `application/json` (or a `+json` type), else 415."""
    media_type = connection.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Send the body as JSON with `Content-Type: application/json` (got "
            f"{media_type or 'no Content-Type'!r})."
        )


async def check_item_id(request: Request[Any, Any, Any]) -> None:
    """before_request hook of the item routes: the id is ASCII digits, else 404; then chaos.

    `int()` also reads `+1`, `1_0` and digits of other scripts. A hook, not a guard: Litestar
    copies the route handler for every guard call, ~10 µs per read (bench/README.md). A
    handler's hook replaces its router's, so this one also injects chaos, after the check.
    """
    raw = request.scope["path"].rpartition("/")[2]
    if not (raw.isascii() and raw.isdigit()):
        raise NotFoundException(f"No item has the id {raw!r}: ids are ASCII digits.")
    await inject_chaos(request)


# Liveness answers the same bytes every time, so the response is built once and Litestar sends
# it as it is: a handler returning a dict pays for a Response, its encoding and its headers on
# every request (19 against 10 µs of CPU per request in-process, bench/README.md "Backend").
ALIVE = ASGIResponse(body=msgspec.json.encode({"status": "ok"}), media_type=MediaType.JSON)


@get(
    "/health/live",
    tags=["health"],
    responses={
        200: ResponseSpec(
            dict[str, str], description="The process answers.", generate_examples=False
        )
    },
)
async def live() -> ASGIResponse:
    """Liveness: the process answers (no database call)."""
    return ALIVE


@get("/health/ready", tags=["health"], responses=problem_responses(503))
async def ready(
    db: NamedDependency[Database], lifecycle: NamedDependency[Lifecycle]
) -> dict[str, str]:
    """Readiness: 200 only when PostgreSQL answers and the process is not draining."""
    if lifecycle.draining:
        raise ServiceUnavailableException("Draining: this process is shutting down.")
    await db.ping()  # raises DatabaseUnavailableError → 503 problem details
    return {"status": "ok"}


@get("/metrics", tags=["metrics"], include_in_schema=False)
async def metrics(
    request: Request[Any, Any, Any], registry: NamedDependency[CollectorRegistry]
) -> Response[bytes]:
    """Exposition of the app's registry in the format the scraper's `Accept` asks for
    (OpenMetrics, else the Prometheus text format: prometheus_client negotiates), with that
    format's Content-Type as the only one (a `media_type` would get a second charset)."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry), headers={"content-type": content_type})


@post(
    "/api/items",
    tags=["items"],
    guards=[require_json],
    responses=problem_responses(400, 413, 415, 500, 503),
)
async def create_item(
    db: NamedDependency[Database],
    # The model refuses unknown fields (forbid_unknown_fields): so does the document.
    data: Annotated[NewItem, Body(schema_extra={"additionalProperties": False})],
) -> Item:
    """Store an item; 201 with the stored item."""
    return await db.create_item(data.name, data.description)


@get("/api/items", tags=["items"], responses=problem_responses(400, 500, 503))
async def list_items(
    db: NamedDependency[Database],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
) -> ItemPage:
    """A page of items ordered by id."""
    return ItemPage(items=await db.list_items(limit, offset), limit=limit, offset=offset)


ITEM_ERRORS = problem_responses(400, 404, 500, 503)


@get("/api/items/{id:int}", tags=["items"], before_request=check_item_id, responses=ITEM_ERRORS)
async def get_item(db: NamedDependency[Database], id: ItemId) -> Item:
    """One item, or 404."""
    if (item := await db.get_item(id)) is None:
        raise NotFoundException(f"Item {id} does not exist.")
    return item


@delete("/api/items/{id:int}", tags=["items"], before_request=check_item_id, responses=ITEM_ERRORS)
async def delete_item(db: NamedDependency[Database], id: ItemId) -> None:
    """Delete an item; 204, or 404 when it does not exist."""
    if not await db.delete_item(id):
        raise NotFoundException(f"Item {id} does not exist.")


def options(path: str, *handlers: HTTPRouteHandler) -> HTTPRouteHandler:
    """An explicit OPTIONS handler for `path`, whose `Allow` lists every method of `handlers`.

    Litestar 2's automatic one lists only the methods of the first handler registered on a
    path (litestar-org/litestar#4169, fixed in v3). Register it before `handlers`, so that
    Litestar sees OPTIONS handled and generates none.
    """
    methods = chain(["OPTIONS"], *(handler.http_methods for handler in handlers))
    allow = {"Allow": ", ".join(sorted(set(methods)))}

    async def answer() -> Response[None]:
        return Response(None, status_code=204, headers=allow)

    return route(path, http_method=HttpMethod.OPTIONS, status_code=204, include_in_schema=False)(
        answer
    )


# Register these before the handlers they describe (see `options`).
items_options = options("/api/items", create_item, list_items)
item_options = options("/api/items/{id:int}", get_item, delete_item)


@get("/api/work", tags=["work"], sync_to_thread=True, responses=problem_responses(400, 500))
def work(ms: Annotated[int, QueryParameter(ge=0, le=MAX_WORK_MS)]) -> WorkDone:
    """Burn about `ms` milliseconds of CPU (for autoscaling demos); at most MAX_WORK_MS."""
    deadline = time.perf_counter() + ms / 1000
    iterations = 0
    while time.perf_counter() < deadline:
        iterations += 1
    return WorkDone(ms=ms, iterations=iterations)
