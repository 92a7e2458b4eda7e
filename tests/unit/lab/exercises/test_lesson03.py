"""03-pgdata: the verifier renders the StatefulSet with the learner's PGDATA and lints it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises

from .conftest import rejected

MOUNT = "/var/lib/postgresql/data"  # where the StatefulSet mounts its claim


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
        (MOUNT, "where the claim is mounted"),
        (f"{MOUNT}/", "where the claim is mounted"),
        (f"{MOUNT}/.", "where the claim is mounted"),
        (f"{MOUNT}2", "on no claim's mount"),  # a prefix, not a subdirectory
        (f"{MOUNT}/../pgdata", "the data dies with the pod"),  # climbs out of the mount
        (None, "not an absolute path"),
    ],
)
def test_a_plausible_wrong_path_is_rejected(wrong: str, seen: str) -> None:
    failed = rejected("03-pgdata", wrong)
    assert seen in failed.seen
    # the feedback teaches the concept; it names neither the mount nor the answer's subdirectory
    feedback = f"{failed.seen} {failed.hint}"
    assert MOUNT not in feedback.replace(str(wrong), "")
    assert "subdirectory" not in feedback
    assert f"{MOUNT}/pgdata" not in feedback
