"""04-strategy: the learner's rollingUpdate is put into the rendered Deployment and its bounds
computed with the HPA's floor (real `kubectl kustomize` render)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError
from lab.exercises.lesson04 import rollout_bounds
from lab.manifests import Obj


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
    "wrong",
    [
        {"maxUnavailable": 1, "maxSurge": 0},  # capacity drops to 2
        {"maxUnavailable": 0, "maxSurge": "50%"},  # 5 pods: the percentage rounds up
        {"maxUnavailable": 0, "maxSurge": 0},  # never progresses
        {"maxUnavailable": "one", "maxSurge": 1},
    ],
)
def test_plausible_wrong_strategies_are_rejected(
    kind_objects: list[Obj], wrong: dict[str, Any]
) -> None:
    with pytest.raises(ExerciseFailedError):
        exercises.verify("04-strategy", wrong, objects=kind_objects)


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("04-strategy")
    assert result.status == "passed"
    assert result.seen == "3 replicas: at least 3 ready, at most 4 pods"
