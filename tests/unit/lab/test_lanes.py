"""lab.runner.lanes: how a run's notebooks are shared out over local stacks, and `--lanes`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest

from lab import cli
from lab.commands.run import record_for_workshop
from lab.identity import Identity
from lab.runner.lanes import (
    DEFAULT_COST_S,
    DEFAULT_LANES,
    MAX_LANES,
    Share,
    expected_seconds,
    plan,
)
from lab.runner.report import NotebookResult, RunResult
from lab.runner.run import RunOptions, _Lane

REPO = Path(__file__).resolve().parents[3]


def test_the_longest_notebooks_go_first_onto_the_least_loaded_lane() -> None:
    # 07 (35 s) fills one lane; 04 + 05 + 06 the other; the short ones even the two out
    costs = [2, 2, 2, 11, 28, 17, 11, 35, 2]  # 00 .. 07, 99
    lanes = plan(costs, 2)
    assert lanes == [[0, 1, 2, 3, 7, 8], [4, 5, 6]]
    assert sorted(p for lane in lanes for p in lane) == list(range(len(costs)))
    loads = [sum(costs[p] for p in lane) for lane in lanes]
    assert max(loads) - min(loads) <= max(costs)  # within one notebook of each other


def test_each_lane_keeps_lesson_order_and_empty_lanes_are_left_out() -> None:
    assert plan([5, 1, 1], 8) == [[0], [1], [2]]
    assert plan([1, 1, 1], 1) == [[0, 1, 2]]
    assert plan([], 2) == []
    for lane in plan([3, 9, 1, 7, 2, 8], 3):
        assert lane == sorted(lane)


def test_zero_lanes_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan([1.0], 0)


def test_a_notebook_declares_its_expected_duration_else_the_default(tmp_path: Path) -> None:
    declared, silent = tmp_path / "01-a.ipynb", tmp_path / "02-b.ipynb"
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, silent)
    nb.metadata["ironclad"] = {"headless_seconds": 42}
    nbformat.write(nb, declared)
    assert expected_seconds(declared) == 42
    assert expected_seconds(silent) == DEFAULT_COST_S


def test_every_lesson_declares_its_expected_duration() -> None:
    notebooks = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    assert notebooks
    undeclared = [
        p.name
        for p in notebooks
        if "headless_seconds" not in nbformat.read(p, as_version=4).metadata.get("ironclad", {})
    ]
    assert undeclared == []


def test_lanes_option_defaults_and_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.parser().parse_args(["run"]).lanes == DEFAULT_LANES
    assert cli.parser().parse_args(["run", "--lanes", "1"]).lanes == 1
    for wrong in ("0", str(MAX_LANES + 1), "two"):
        with pytest.raises(SystemExit) as info:
            cli.parser().parse_args(["run", "--lanes", wrong])
        assert info.value.code == 2
        assert f"a whole number of stacks from 1 to {MAX_LANES}" in capsys.readouterr().err


@dataclass
class StubStack:
    """What a lane reads of its `StackProcess`: the target asked for, then (once it is ready)
    the target and the state."""

    target: str
    state: Any
    state_file: Path = Path("lab-state.json")

    @property
    def requested(self) -> str:
        return self.target


@pytest.mark.parametrize(
    ("target", "identity", "recorded"),
    [
        ("cluster", Identity("ctx", "learner-01", "/k", "r.example/b:1", True), True),
        ("kind", Identity("kind-ironclad", "ironclad-demo", "/k", "ironclad-backend:lab"), True),
        ("local", None, False),  # no Kubernetes lab: nothing to record it in
    ],
)
def test_a_lane_hands_its_summary_to_the_record_hook_the_command_passes(
    monkeypatch: pytest.MonkeyPatch, target: str, identity: Identity | None, recorded: bool
) -> None:
    """The runner knows nothing of `workshop status`: `ironclad-lab run` passes the hook
    (which records only on a shared cluster, test_status.py)."""
    result = RunResult(target, [NotebookResult("01-namespace", status="passed")])
    monkeypatch.setattr("lab.runner.execute.execute_notebooks", lambda *a, **k: result)
    calls: list[tuple[dict[str, Any], Identity]] = []
    up = StubStack(target, SimpleNamespace(identity=identity))
    options = RunOptions(target, [], Path("report"))
    lane = _Lane(Share([], 0), up, options, lambda s, i: calls.append((dict(s), i)))  # type: ignore[arg-type]
    lane._run_share()
    assert calls == ([(result.summary(), identity)] if recorded else [])


def test_the_run_command_passes_the_workshop_record_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    passed: list[Any] = []
    monkeypatch.setattr("lab.runner.run.run_lab", lambda o, s, hook=None: passed.append(hook) or 0)
    assert cli.main(["run", "--target", "local", "--notebooks", "01"]) == 0
    assert passed == [record_for_workshop]
