"""Shared test configuration: folder-based markers and the real PostgreSQL server fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import PostgresServer

TESTS_DIR = Path(__file__).parent
FOLDER_MARKERS = ("unit", "integration", "manifests", "notebooks")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the name of its top-level folder (unit, integration, ...)."""
    for item in items:
        folder = Path(item.path).relative_to(TESTS_DIR).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session (temp dir, free loopback port)."""
    with PostgresServer() as server:
        yield server
