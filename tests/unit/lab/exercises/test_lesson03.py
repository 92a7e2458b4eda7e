"""03-pgdata: the verifier renders the StatefulSet with the learner's PGDATA and lints it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("03-pgdata")
    assert result.status == "passed"
    assert "claim 'postgres-storage'" in result.seen


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ("pgdata", "not an absolute path"),
        ("/tmp/pgdata", "the data dies with the pod"),  # an emptyDir: gone with the pod
        ("/var/lib/postgresql", "the data dies with the pod"),  # the container's own files
        ("/var/lib/postgresql/data", "the mount point itself"),
        ("/var/lib/postgresql/data2", "not inside a claim's mount"),  # a prefix, not a subdirectory
    ],
)
def test_a_plausible_wrong_path_is_rejected(wrong: str, seen: str) -> None:
    with pytest.raises(ExerciseFailedError) as failed:
        exercises.verify("03-pgdata", wrong)
    assert seen in failed.value.seen
