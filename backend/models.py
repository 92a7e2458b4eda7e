"""Request and response bodies (msgspec structs; Litestar validates them and documents them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# PostgreSQL text cannot hold NUL characters: reject them at the edge (4xx, not a 5xx later).
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]


class NewItem(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /api/items."""

    name: Name
    description: Description | None = None


class Item(msgspec.Struct):
    """A stored item."""

    id: int
    name: str
    description: str | None
    created_at: datetime


class ItemPage(msgspec.Struct):
    """One page of GET /api/items, ordered by id."""

    items: list[Item]
    limit: int
    offset: int


class WorkDone(msgspec.Struct):
    """Result of GET /api/work."""

    ms: int
    iterations: int
