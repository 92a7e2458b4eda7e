"""Keeps each `xdist_group` of tests on one pytest-xdist worker, on every pytest version.

pytest-xdist's own `--dist loadgroup` passes a test's group from the worker that collected it
to the controller that schedules it by appending `@group` to the test's node id; pytest >= 9.2
no longer lets a plugin change a node id, so there every group is silently ignored
(pytest-dev/pytest-xdist#1386, unfixed in 3.8). This plugin passes the groups through files
instead: each worker writes `{node id: group}` once it has collected (after tests/conftest.py
gave the `xdist_group` marks), and the controller's scheduler, xdist's `LoadScopeScheduling`
with these groups as its scopes, reads them before it hands out the first test. A test without
a group is a scope of its own: whichever worker is free takes it. `--no-loadscope-reorder`
keeps the groups in collection order (tests/conftest.py puts the longest first).

A module-scoped fixture is shared by its module's tests, so such a module must be one group:
`pytest_fixture_setup` fails one that is not (pytest has no public way to read a fixture's
scope at collection, when the groups are made).

Loaded by tests/conftest.py (`pytest_plugins`); it schedules with `-n N --dist loadscope` (the
`addopts` of pyproject.toml: `nox -s tests` runs 4 workers).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

WORKERINPUT_KEY = "lab_xdist_groups_dir"  # where the workers write their groups
_groups_dir = pytest.StashKey[Path]()


def group_of(item: pytest.Item) -> str | None:
    """The name of `item`'s `xdist_group` mark (several marks: their names joined, as xdist's
    loadgroup does), or None."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return "_".join(sorted(names)) or None


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling whose scopes are the groups the workers wrote to `directory`:
    a group's tests go to one worker, in order; an ungrouped test is a scope of its own."""

    def __init__(self, config: pytest.Config, log: Producer | None, directory: Path) -> None:
        super().__init__(config, log)
        self.directory = directory
        self.groups: dict[str, str] = {}

    def schedule(self) -> None:
        if self.collection is None:  # the first call: every worker has finished collecting
            for path in sorted(self.directory.glob("*.json")):
                self.groups.update(json.loads(path.read_text()))
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        return self.groups.get(nodeid, nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: WorkerController) -> None:
    """Controller: one directory for this run's groups, told to every worker."""
    stash = node.config.stash
    if _groups_dir not in stash:
        stash[_groups_dir] = Path(tempfile.mkdtemp(prefix="xdist-groups-"))
    node.workerinput[WORKERINPUT_KEY] = str(stash[_groups_dir])


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadScopeScheduling | None:
    """Controller: with `--dist loadscope`, the scopes are the groups."""
    if config.getvalue("dist") != "loadscope" or _groups_dir not in config.stash:
        return None
    return GroupScheduling(config, log, config.stash[_groups_dir])


@pytest.hookimpl(trylast=True)  # after tests/conftest.py gave each test its group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Worker: write this worker's `{node id: group}`, whole or not at all (a rename)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or WORKERINPUT_KEY not in workerinput:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    target = Path(workerinput[WORKERINPUT_KEY]) / f"{workerinput['workerid']}.json"
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(groups))
    partial.rename(target)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """A module-scoped fixture is shared by its module's tests, which only works when they run
    on one worker: a module using one must carry an `xdist_group` mark (pytest has no public
    way to read a fixture's scope at collection, when the groups are made). A `kind` module is
    grouped already (all `kind` tests share one worker)."""
    module = request.node
    if fixturedef.scope == "module" and not any(
        module.get_closest_marker(mark) for mark in ("xdist_group", "kind")
    ):
        pytest.fail(
            f"{module.nodeid} uses the module-scoped fixture {fixturedef.argname!r}, whose"
            " state its tests share: add `pytestmark = pytest.mark.xdist_group(__name__)` to"
            " the module so that pytest-xdist runs them on one worker, in order",
            pytrace=False,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Controller: the groups' directory goes with the run."""
    if _groups_dir in config.stash:
        shutil.rmtree(config.stash[_groups_dir], ignore_errors=True)
