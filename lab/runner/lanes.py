"""Lanes: a run's notebooks split over several local stacks that run side by side.

Every notebook attaches to whatever stack `lab up` started and brings it to what its lesson
expects (`lab.connect(lesson=N)`), so on the local target a run may start N stacks and give
each a share of the notebooks. A lane runs its share in lesson order; its stack starts with
what its first notebook expects. The plan minimises the longest lane, counting for each lane
the notebooks' own durations (`metadata.ironclad.headless_seconds`, measured on the local
target in course order, where each finds its parts built) plus the parts a notebook has to
build because no earlier notebook of its lane did (`BUILD_SECONDS`). Only the local target has
lanes: a kind or shared cluster is one stack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.lessons import PARTS, by_notebook, expected_parts, lesson

DEFAULT_LANES = 3  # measured fastest on 2 cores (bench/README.md "Lab run")
MAX_LANES = 8
COST_KEY = "headless_seconds"
DEFAULT_COST_S = 10.0  # a notebook that declares no duration
# Seconds a local stack takes to build a part that a notebook finds missing (measured in
# `lab.connect`'s build line, bench/README.md "Lab run"): PostgreSQL's initdb; three backends
# ready; Prometheus scraping every replica (its discovery and scrape managers apply new
# targets on 5 s tickers). The other parts are a folder or environment variables. Built with
# the parts before it, Prometheus starts first (`LocalTarget.build`): its wait overlaps theirs.
BUILD_SECONDS = {"postgres": 1.5, "backend": 3.0, "monitoring": 6.0}
OVERLAPPING = "monitoring"
# What a lane's stack builds before its first notebook costs the lane only beyond this: the
# run's own start (kernels booting, papermill and pandas imported) takes about as long.
STARTUP_S = 4.0
SEARCH_LIMIT = 200_000  # plans tried; beyond it the best one found so far is taken


@dataclass(frozen=True)
class Planned:
    """What the plan knows of a notebook: its declared duration and its lesson (None: a
    notebook outside `lab.lessons`, for which `lab up` builds the whole stack)."""

    seconds: float
    lesson: int | None = None


def expected_seconds(path: Path) -> float:
    """How long the notebook at `path` takes headless on the local target, as it declares.

    Read as plain JSON: the plan is made before the stacks start, nbformat would add a second
    of import to that."""
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("ironclad", {})
    return float(metadata.get(COST_KEY, DEFAULT_COST_S))


def planned(path: Path) -> Planned:
    """The notebook at `path` as the plan sees it."""
    try:
        number: int | None = by_notebook(path.stem).number
    except LabError:
        number = None
    return Planned(expected_seconds(path), number)


def lane_seconds(notebooks: Sequence[Planned]) -> float:
    """How long one lane takes to run `notebooks` (in order) on a stack that starts with what
    the first one expects: their durations plus the parts each one has to build."""
    total = 0.0
    built: tuple[str, ...] = ()
    for index, notebook in enumerate(notebooks):
        cost, built = _step(notebook, built, first=index == 0)
        total += cost
    return total


def _step(
    notebook: Planned, built: tuple[str, ...], *, first: bool
) -> tuple[float, tuple[str, ...]]:
    """`notebook`'s cost on a stack with `built`, and what is built after it."""
    wanted = PARTS if notebook.lesson is None else expected_parts(notebook.lesson)
    missing = [BUILD_SECONDS.get(part, 0.0) for part in wanted if part not in built]
    if OVERLAPPING in wanted and OVERLAPPING not in built:
        overlapping = missing.pop()  # the last part: PARTS order
        build = max(sum(missing), overlapping)
    else:
        build = sum(missing)
    if first:
        build = max(0.0, build - STARTUP_S)
    own = () if notebook.lesson is None else tuple(filter(None, [lesson(notebook.lesson).part]))
    return notebook.seconds + build, (*wanted, *own)


def plan(notebooks: Sequence[Planned], lanes: int) -> list[list[int]]:
    """Split `notebooks` (in run order) over at most `lanes` lanes; each lane's positions, in
    run order, empty lanes left out.

    The plan with the shortest longest lane (`lane_seconds`), then the least time in all; found
    by a search that extends lanes in run order (a notebook's cost depends only on the ones
    before it in its lane, so a partial plan's longest lane bounds every plan it leads to),
    started from the greedy plan and stopped after `SEARCH_LIMIT` steps.
    """
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    if not notebooks:
        return []
    search = _Search(notebooks, lanes)
    search.run()
    return [sorted(share) for share in search.best if share]


def greedy(notebooks: Sequence[Planned], lanes: int) -> list[list[int]]:
    """Longest first onto the least loaded lane (ties: the lower lane), by declared seconds."""
    loads = [0.0] * lanes
    shares: list[list[int]] = [[] for _ in range(lanes)]
    for position in sorted(range(len(notebooks)), key=lambda p: (-notebooks[p].seconds, p)):
        lane = min(range(lanes), key=lambda n: (loads[n], n))
        loads[lane] += notebooks[position].seconds
        shares[lane].append(position)
    return [sorted(share) for share in shares]


class _Search:
    """Branch and bound over the ways to share the notebooks out (lanes are interchangeable:
    a notebook opens at most the next empty lane)."""

    def __init__(self, notebooks: Sequence[Planned], lanes: int) -> None:
        self.notebooks, self.lanes = notebooks, lanes
        self.best = greedy(notebooks, lanes)
        self.best_key = self._key(self.best)
        self.steps = 0

    def _key(self, shares: Sequence[Sequence[int]]) -> tuple[float, float]:
        seconds = [lane_seconds([self.notebooks[p] for p in share]) for share in shares]
        return max(seconds), sum(seconds)

    def run(self) -> None:
        lanes = self.lanes
        self._extend(0, [[] for _ in range(lanes)], [0.0] * lanes, [()] * lanes)

    def _extend(
        self,
        position: int,
        shares: list[list[int]],
        costs: list[float],
        built: list[tuple[str, ...]],
    ) -> None:
        if (max(costs), sum(costs)) >= self.best_key or self.steps >= SEARCH_LIMIT:
            return
        self.steps += 1
        if position == len(self.notebooks):
            self.best, self.best_key = [list(s) for s in shares], (max(costs), sum(costs))
            return
        opened = sum(1 for share in shares if share)
        for lane in range(min(opened + 1, self.lanes)):
            cost, after = _step(self.notebooks[position], built[lane], first=not shares[lane])
            was = costs[lane], built[lane]
            shares[lane].append(position)
            costs[lane], built[lane] = costs[lane] + cost, after
            self._extend(position + 1, shares, costs, built)
            shares[lane].pop()
            costs[lane], built[lane] = was


@dataclass(frozen=True)
class Share:
    """A lane's part of a run: its notebooks' places among the run's `total`, the terminal row
    of its progress bar, and the event shared by all lanes: set on a failure, no lane starts
    another notebook."""

    positions: Sequence[int]
    total: int
    row: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
