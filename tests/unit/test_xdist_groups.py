"""The worker groups of tests/conftest.py reach pytest-xdist: a module using a module-scoped
fixture runs on one worker (its node ids carry the group, as `--dist loadgroup` spells it)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def shared() -> str:
    return "one per module"


def test_a_module_scoped_fixture_keeps_its_module_on_one_worker(
    shared: str, request: pytest.FixtureRequest
) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("not under pytest-xdist (-n 0): there are no workers to keep it on")
    module = request.node.nodeid.split("::", 1)[0]
    assert request.node.nodeid.endswith(f"@{module}"), (
        "pytest-xdist dropped the test's xdist_group. With pytest >= 9.2 and pytest-xdist 3.8 it"
        " does (pytest-dev/pytest-xdist#1386): keep pytest below 9.2 until a release fixes it."
    )
