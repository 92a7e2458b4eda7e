"""04-strategy: the learner's rollingUpdate is put into the rendered Deployment and its bounds
computed with the HPA's floor (real `kubectl kustomize` render)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lab import exercises
from lab.exercises.lesson04 import rollout_bounds
from lab.manifests import Obj

from .conftest import rejected


@pytest.mark.parametrize(
    ("rolling", "bounds"),
    [
        ({"maxUnavailable": 1, "maxSurge": 1}, (2, 4)),
        ({"maxUnavailable": 0, "maxSurge": "50%"}, (3, 5)),  # surge rounds 1.5 up
        ({"maxUnavailable": "50%", "maxSurge": 0}, (2, 3)),  # unavailable rounds 1.5 down
        ({}, (3, 4)),  # the defaults, 25 % each: 0.75 down to 0, 0.75 up to 1
    ],
)
def test_rollout_bounds_round_like_kubernetes(
    rolling: dict[str, Any], bounds: tuple[int, int]
) -> None:
    assert rollout_bounds(3, rolling) == bounds


def test_a_strategy_that_cannot_progress_is_refused() -> None:
    with pytest.raises(ValueError, match="no update could ever proceed"):
        rollout_bounds(3, {"maxUnavailable": 0, "maxSurge": 0})


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ({"maxUnavailable": 1, "maxSurge": 0}, "at least 2 ready"),  # capacity drops to 2
        ({"maxUnavailable": 1, "maxSurge": 1}, "at least 2 ready"),  # the lab's own setting
        ({"maxUnavailable": 0, "maxSurge": "50%"}, "at most 5 pods"),  # 1.5 rounds up
        ({"maxUnavailable": 0, "maxSurge": 2}, "at most 5 pods"),
        ({"maxUnavailable": "0%", "maxSurge": "34%"}, "at most 5 pods"),  # 1.02 rounds up to 2
        ({"maxUnavailable": 0, "maxSurge": 0}, "no update could ever proceed"),
        ({"maxUnavailable": "one", "maxSurge": 1}, "neither a count"),
        ({"maxUnavailable": -1, "maxSurge": 1}, "neither a count"),
        ({"type": "RollingUpdate", "maxUnavailable": 0, "maxSurge": 1}, "fields ['type']"),
        ("maxSurge: 1", "not a rollingUpdate"),
    ],
)
def test_plausible_wrong_strategies_are_rejected(
    kind_objects: list[Obj], wrong: object, seen: str
) -> None:
    assert seen in rejected("04-strategy", wrong, objects=kind_objects).seen


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("04-strategy")
    assert result.status == "passed"
    assert result.seen == "3 replicas: at least 3 ready, at most 4 pods"
