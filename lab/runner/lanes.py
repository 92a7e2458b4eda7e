"""Lanes: a run's notebooks split over several local stacks that run side by side.

Every notebook attaches to whatever stack `lab up` started and makes no assumption about what
an earlier notebook did to it (each one can run alone: `--notebooks 07`), so on the local target
a run may start N stacks and give each a share of the notebooks. A lane runs its share in
lesson order; the shares are balanced by each notebook's expected headless duration
(`metadata.ironclad.headless_seconds`, measured on the local target), longest first onto the
least loaded lane. Only the local target has lanes: a kind or shared cluster is one stack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LANES = 3  # measured fastest on 2 cores (bench/README.md "Lab run"): about 07 alone
MAX_LANES = 8
COST_KEY = "headless_seconds"
DEFAULT_COST_S = 10.0  # a notebook that declares no duration


def expected_seconds(path: Path) -> float:
    """How long the notebook at `path` takes headless on the local target, as it declares.

    Read as plain JSON: the plan is made before the stacks start, nbformat would add a second
    of import to that."""
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("ironclad", {})
    return float(metadata.get(COST_KEY, DEFAULT_COST_S))


def plan(costs: Sequence[float], lanes: int) -> list[list[int]]:
    """Split notebooks of `costs` (seconds, in run order) over at most `lanes` lanes.

    Longest first onto the least loaded lane (ties: the lower lane); returns each lane's
    notebook positions in run order, empty lanes left out.
    """
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    loads = [0.0] * lanes
    shares: list[list[int]] = [[] for _ in range(lanes)]
    for position in sorted(range(len(costs)), key=lambda p: (-costs[p], p)):
        lane = min(range(lanes), key=lambda n: (loads[n], n))
        loads[lane] += costs[position]
        shares[lane].append(position)
    return [sorted(share) for share in shares if share]


@dataclass(frozen=True)
class Share:
    """A lane's part of a run: its notebooks' places among the run's `total`, the terminal row
    of its progress bar, and the event shared by all lanes: set on a failure, no lane starts
    another notebook."""

    positions: Sequence[int]
    total: int
    row: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
