"""lab.runner.lanes: how a run's notebooks are shared out over local stacks, and `--lanes`."""

from __future__ import annotations

import itertools
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
    BUILD_SECONDS,
    DEFAULT_COST_S,
    DEFAULT_LANES,
    MAX_LANES,
    STARTUP_S,
    Planned,
    Share,
    expected_seconds,
    greedy,
    lane_seconds,
    plan,
    planned,
)
from lab.runner.report import NotebookResult, RunResult
from lab.runner.run import RunOptions, _Lane

REPO = Path(__file__).resolve().parents[3]


def brute_force(notebooks: list[Planned], lanes: int) -> tuple[float, float]:
    """The best (longest lane, total) over every way to share `notebooks` out."""
    best = (float("inf"), float("inf"))
    for assignment in itertools.product(range(lanes), repeat=len(notebooks)):
        shares = [[p for p, lane in enumerate(assignment) if lane == n] for n in range(lanes)]
        seconds = [lane_seconds([notebooks[p] for p in share]) for share in shares if share]
        best = min(best, (max(seconds), sum(seconds)))
    return best


def key(notebooks: list[Planned], shares: list[list[int]]) -> tuple[float, float]:
    seconds = [lane_seconds([notebooks[p] for p in share]) for share in shares]
    return max(seconds), sum(seconds)


def test_the_plan_has_the_shortest_longest_lane_there_is() -> None:
    """Checked against every assignment, with and without lessons (builds counted)."""
    cases = [
        [Planned(s) for s in (2, 2, 2, 11, 28, 17, 11, 35, 2)],
        [Planned(s, n) for s, n in zip((4, 4, 2, 14, 32, 14, 17, 31, 9), range(9), strict=True)],
        [Planned(s, n) for s, n in zip((1, 9, 3, 7, 2, 8, 5), (0, 1, 3, 4, 6, 7, 99), strict=True)],
    ]
    for notebooks in cases:
        for lanes in (1, 2, 3):
            shares = plan(notebooks, lanes)
            assert sorted(p for share in shares for p in share) == list(range(len(notebooks)))
            assert len(shares) <= lanes
            assert key(notebooks, shares) == brute_force(notebooks, lanes), (notebooks, lanes)


def test_the_plan_beats_longest_first_when_a_lane_would_build_parts_twice() -> None:
    """07 after 04 alone in its lane builds nothing more; 07 on a lane of its own starts with the
    whole stack built during the run's start-up; greedy by duration ignores both."""
    notebooks = [
        Planned(s, n) for s, n in zip((4, 4, 2, 14, 32, 14, 17, 31, 9), range(9), strict=True)
    ]
    shares = plan(notebooks, 3)
    assert key(notebooks, shares) < key(notebooks, greedy(notebooks, 3))


def test_a_lane_counts_the_parts_its_notebooks_find_missing() -> None:
    # postgres and backend, with Prometheus started first: its wait overlaps theirs
    whole = max(BUILD_SECONDS["postgres"] + BUILD_SECONDS["backend"], BUILD_SECONDS["monitoring"])
    assert lane_seconds([Planned(30, 7)]) == 30 + max(0.0, whole - STARTUP_S)  # at start-up
    assert lane_seconds([Planned(1, 0), Planned(30, 7)]) == 1 + 30 + whole  # 07 builds it all
    in_order = lane_seconds([Planned(1, 3), Planned(2, 4), Planned(3, 5), Planned(4, 6)])
    assert in_order == 10  # each lesson builds its own part, inside its own duration
    assert lane_seconds([Planned(1, 3), Planned(4, 6)]) == 5 + BUILD_SECONDS["backend"]


def test_each_lane_keeps_lesson_order_and_empty_lanes_are_left_out() -> None:
    # a third stack would not shorten the run (5 s + its start): the two short ones share one
    assert plan([Planned(5), Planned(1), Planned(1)], 8) == [[0], [1, 2]]
    assert plan([Planned(1)] * 3, 1) == [[0, 1, 2]]
    assert plan([], 2) == []
    for lane in plan([Planned(s) for s in (3, 9, 1, 7, 2, 8)], 3):
        assert lane == sorted(lane)


def test_zero_lanes_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan([Planned(1.0)], 0)


def test_a_notebook_outside_the_lessons_expects_the_whole_stack(tmp_path: Path) -> None:
    path = tmp_path / "42-extra.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    assert planned(path) == Planned(DEFAULT_COST_S, None)
    assert planned(REPO / "notebooks" / "07-chaos-and-slo.ipynb").lesson == 7


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
