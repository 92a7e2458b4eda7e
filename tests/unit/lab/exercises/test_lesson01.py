"""01-prometheus-role: the verifier renders the kind overlay with the learner's Role and lints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError

POD_READS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}


def test_the_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("01-prometheus-role")
    assert result.status == "passed"
    assert "get/list/watch on pods" in result.seen


@pytest.mark.parametrize(
    ("wrong", "seen"),
    [
        ("Role", "a str, not a dict"),  # the kind alone, no rules
        # the original design's answer: a ClusterRole
        ({"kind": "ClusterRole", "rules": [POD_READS]}, "cluster-scoped"),
        # discovery lists, then watches: without watch it finds nothing
        (
            {"kind": "Role", "rules": [{**POD_READS, "verbs": ["get", "list"]}]},
            "missing: ['watch']",
        ),
        # works, but more than role `pod` discovery reads
        (
            {"kind": "Role", "rules": [{**POD_READS, "resources": ["pods", "services", "nodes"]}]},
            "resource 'nodes', resource 'services'",
        ),
        (
            {"kind": "Role", "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
            "'*'",
        ),
    ],
)
def test_a_plausible_wrong_role_is_rejected(wrong: object, seen: str) -> None:
    with pytest.raises(ExerciseFailedError) as failed:
        exercises.verify("01-prometheus-role", wrong)
    assert seen in failed.value.seen
