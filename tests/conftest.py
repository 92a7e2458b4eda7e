"""Shared test configuration: folder-based markers, the `kind` skip and the PostgreSQL fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.procs import PostgresServer
from lab.targets import docker_problem

TESTS_DIR = Path(__file__).parent
FOLDER_MARKERS = ("unit", "integration", "manifests", "notebooks")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the name of its top-level folder (unit, integration, ...), and skip
    the `kind` tests, with the reason, where no kind cluster can run (Docker does not answer)."""
    kind_problem: str | None = None
    for item in items:
        folder = Path(item.path).relative_to(TESTS_DIR).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)
        if item.get_closest_marker("kind") is not None:
            if kind_problem is None:  # asked once, and only when a kind test was collected
                kind_problem = docker_problem() or ""
            if kind_problem:
                item.add_marker(pytest.mark.skip(f"no kind cluster possible here: {kind_problem}"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session (temp dir, free loopback port)."""
    with PostgresServer() as server:
        yield server
