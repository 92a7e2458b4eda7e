"""tests/plugins/worker_groups.py on a small suite of its own (pytester, 2 pytest-xdist workers,
the installed pytest): each `xdist_group` runs on one worker, and a module whose module-scoped
fixture has no group fails with what to add. (xdist's own `--dist loadgroup` spreads the first
suite's groups over both workers with pytest >= 9.2: pytest-dev/pytest-xdist#1386.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parents[1] / "plugins"

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group(__name__)


@pytest.mark.parametrize("i", range(6))
def test_in_group(i):
    pass
"""

UNGROUPED = """
import pytest


@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
"""

UNDECLARED = """
import pytest


@pytest.fixture(scope="module")
def shared():
    return "one per module"


def test_uses_it(shared):
    pass
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(PLUGINS))
    return pytester.runpytest_subprocess(
        "-n", "2", "--dist=loadscope", "-p", "worker_groups", "-p", "no:cacheprovider", "-v"
    )


def workers(result: pytest.RunResult) -> dict[str, set[str]]:
    """module -> the workers that ran its tests (from `-v`'s `[gw0] ... PASSED mod.py::test`)."""
    ran: dict[str, set[str]] = {}
    for line in result.outlines:
        found = re.match(r"\[(gw\d+)\].* (PASSED|FAILED|ERROR) (\S+?)::", line)
        if found:
            ran.setdefault(found[3], set()).add(found[1])
    return ran


def test_each_group_runs_on_one_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_a=GROUPED, test_b=GROUPED, test_c=UNGROUPED)
    result = run(pytester, monkeypatch)
    result.assert_outcomes(passed=18)
    ran = workers(result)
    assert sorted(ran) == ["test_a.py", "test_b.py", "test_c.py"]
    assert len(ran["test_a.py"]) == 1, ran
    assert len(ran["test_b.py"]) == 1, ran


def test_a_module_scoped_fixture_without_a_group_fails_saying_what_to_add(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_undeclared=UNDECLARED, test_grouped=GROUPED)
    result = run(pytester, monkeypatch)
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        ["*uses the module-scoped fixture 'shared'*pytest.mark.xdist_group(__name__)*"]
    )
