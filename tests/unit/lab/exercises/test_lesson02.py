"""02-secret-ref: the verifier renders the backend with the learner's env entry and lints it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("02-secret-ref")
    assert result.status == "passed"
    assert "Secret 'chaos-secret'" in result.seen


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ("chaos-secret", "not an env entry"),  # the Secret's name alone
        ({"name": "CHAOS_TOKEN", "value": "s3cr3t"}, "literal value"),
        (
            {
                "name": "CHAOS_TOKEN",
                "valueFrom": {"configMapKeyRef": {"name": "backend-config", "key": "CHAOS_TOKEN"}},
            },
            "configMapKeyRef",
        ),
        # the right kind of object, the wrong one: the pod would never start
        (
            {
                "name": "CHAOS_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "postgres-secret", "key": "CHAOS_TOKEN"}},
            },
            "has no key 'CHAOS_TOKEN'",
        ),
    ],
)
def test_a_plausible_wrong_entry_is_rejected(wrong: object, seen: str) -> None:
    with pytest.raises(ExerciseFailedError) as failed:
        exercises.verify("02-secret-ref", wrong)
    assert seen in failed.value.seen
