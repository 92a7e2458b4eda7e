"""05-pdb and 05-netpol: the learner's PDB spec / NetworkPolicy applied to the real kind
render, then linted and evaluated (no cluster: the verifiers check the rendered result)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lab import exercises
from lab.errors import ExerciseFailedError
from lab.exercises.lesson05 import disruptions_allowed
from lab.manifests import Obj
from lab.settings import get_settings


@pytest.mark.parametrize(
    ("spec", "healthy", "allowed"),
    [
        ({"minAvailable": 2}, 3, 1),
        ({"minAvailable": 2}, 2, 0),
        ({"minAvailable": "50%"}, 4, 2),
        ({"minAvailable": "60%"}, 3, 1),  # 1.8 rounds up to 2 pods kept
        ({"maxUnavailable": 1}, 4, 1),
        ({"maxUnavailable": 1}, 3, 0),  # one already missing of 4 expected
    ],
)
def test_disruptions_allowed_matches_the_eviction_api(
    spec: dict[str, Any], healthy: int, allowed: int
) -> None:
    assert disruptions_allowed(spec, healthy, 4 if "maxUnavailable" in spec else healthy) == allowed


@pytest.mark.parametrize(
    ("wrong", "why"),
    [
        ({"minAvailable": 4, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "pdb-below-replicas"),
        ({"minAvailable": 3}, "pdb-unhealthy-eviction"),
        ({"minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "2 eviction"),
    ],
)
def test_05_pdb_rejects_plausible_wrong_budgets(
    kind_objects: list[Obj], wrong: dict[str, Any], why: str
) -> None:
    with pytest.raises(ExerciseFailedError, match=why):
        exercises.verify("05-pdb", wrong, objects=kind_objects)


def test_05_pdb_accepts_max_unavailable_too(kind_objects: list[Obj]) -> None:
    answer = {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    assert exercises.verify("05-pdb", answer, objects=kind_objects).status == "passed"


def test_05_pdb_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("05-pdb")
    assert result.status == "passed"
    assert result.seen == "1 eviction(s) allowed with 4 of 4 pods ready"


@pytest.fixture
def solved_policy(solved_answer: Callable[[str], Any]) -> dict[str, Any]:
    return copy.deepcopy(solved_answer("05-netpol"))


def test_05_netpol_rejects_a_policy_without_dns(
    kind_objects: list[Obj], solved_policy: dict[str, Any]
) -> None:
    policy = solved_policy
    del policy["spec"]["egress"][1]
    with pytest.raises(ExerciseFailedError, match="kube-dns:53/UDP denied"):
        exercises.verify("05-netpol", policy, objects=kind_objects)


def test_05_netpol_rejects_a_policy_that_opens_more_than_the_new_path(
    kind_objects: list[Obj], solved_policy: dict[str, Any]
) -> None:
    policy = solved_policy
    policy["spec"]["podSelector"] = {}  # every pod of the namespace, not only the load generator
    policy["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 443}]})
    with pytest.raises(ExerciseFailedError, match="internet") as failure:
        exercises.verify("05-netpol", policy, objects=kind_objects)
    assert "backend -> internet" in failure.value.seen  # a lab path changed too: lint saw it


def test_05_netpol_rejects_an_allow_all_egress(
    kind_objects: list[Obj], solved_policy: dict[str, Any]
) -> None:
    policy = solved_policy
    policy["spec"]["egress"] = [{}]
    with pytest.raises(ExerciseFailedError, match="loadgen -> internet"):
        exercises.verify("05-netpol", policy, objects=kind_objects)


def test_05_netpol_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("05-netpol")
    assert result.status == "passed"


def test_every_solution_file_is_a_registered_exercise() -> None:
    solutions = exercises.solution_path("05-pdb", get_settings().repo_root).parent
    solved = sorted(p.stem for p in solutions.glob("0[45]-*.py"))
    assert solved == ["04-strategy", "05-netpol", "05-pdb"]
    for exercise in solved:  # an unknown id raises LabError; untouched means not attempted
        assert exercises.verify(exercise).status == "not attempted"
