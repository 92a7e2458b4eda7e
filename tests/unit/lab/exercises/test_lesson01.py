"""01-prometheus-role: the verifier renders the kind overlay with the learner's Role and lints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exercises

from .conftest import rejected

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
        ({"kind": "Role", "rules": []}, "missing"),  # no grant at all: discovery sees nothing
        ({"kind": "Role", "rules": [{**POD_READS, "resources": ["pod"]}]}, "resource 'pod'"),
        ({"kind": "Role", "rules": [{**POD_READS, "apiGroups": ["v1"]}]}, "apiGroup 'v1'"),
        ({"kind": "Role", "rules": [{**POD_READS, "resources": ["pods", "secrets"]}]}, "secrets"),
    ],
)
def test_a_plausible_wrong_role_is_rejected(wrong: object, seen: str) -> None:
    assert seen in rejected("01-prometheus-role", wrong).seen
