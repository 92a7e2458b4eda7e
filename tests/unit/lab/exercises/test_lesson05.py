"""05-pdb and 05-netpol: the learner's PDB spec / NetworkPolicy applied to the real kind
render, then linted and evaluated (no cluster: the verifiers check the rendered result)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lab import exercises
from lab.exercises.lesson05 import disruptions_allowed
from lab.manifests import Obj
from lab.settings import get_settings

from .conftest import rejected


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
        ({"minAvailable": "100%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "0 eviction"),
        ({"minAvailable": 3}, "pdb-unhealthy-eviction"),  # the drain deadlock of the lesson
        (
            {"minAvailable": 3, "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
            "pdb-unhealthy-eviction",
        ),
        ({"minAvailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "2 eviction"),
        ({"maxUnavailable": 2, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, "2 eviction"),
        ({"minAvailable": 3, "maxUnavailable": 1}, "both minAvailable and maxUnavailable"),
        (3, "not a PDB spec"),  # minAvailable's number alone
    ],
)
def test_05_pdb_rejects_plausible_wrong_budgets(
    kind_objects: list[Obj], wrong: object, why: str
) -> None:
    assert why in rejected("05-pdb", wrong, objects=kind_objects).seen


def test_05_pdb_accepts_max_unavailable_too(kind_objects: list[Obj]) -> None:
    answer = {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    assert exercises.verify("05-pdb", answer, objects=kind_objects).status == "passed"


def test_05_pdb_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("05-pdb")
    assert result.status == "passed"
    assert result.seen == "1 eviction allowed with 4 of 4 pods ready"


@pytest.fixture
def solved_policy(solved_answer: Callable[[str], Any]) -> dict[str, Any]:
    return copy.deepcopy(solved_answer("05-netpol"))


def without_dns(policy: dict[str, Any]) -> None:
    del policy["spec"]["egress"][1]


def every_pod(policy: dict[str, Any]) -> None:
    policy["spec"]["podSelector"] = {}  # every pod of the namespace, not only the load generator


def allow_all_egress(policy: dict[str, Any]) -> None:
    policy["spec"]["egress"] = [{}]


def as_ingress(policy: dict[str, Any]) -> None:
    policy["spec"]["policyTypes"] = ["Ingress"]  # the backend's side, not the load generator's


def dns_in_own_namespace(policy: dict[str, Any]) -> None:
    del policy["spec"]["egress"][1]["to"][0]["namespaceSelector"]  # kube-dns is in kube-system


def adds_https(policy: dict[str, Any]) -> None:
    policy["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 443}]})


def not_a_policy(policy: dict[str, Any]) -> None:
    policy["kind"] = "Service"


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (without_dns, "loadgen -> kube-dns:53/UDP is denied, must be allowed"),
        (dns_in_own_namespace, "loadgen -> kube-dns:53/UDP is denied"),
        (every_pod, "postgres -> backend:3000/TCP must be denied but is allowed"),  # lint saw it
        (allow_all_egress, "loadgen -> prometheus:9090/TCP is allowed, must be denied"),
        (adds_https, "loadgen -> internet (203.0.113.10):443/TCP is allowed"),
        (as_ingress, "loadgen -> backend:3000/TCP is denied, must be allowed"),
        (not_a_policy, "not a NetworkPolicy"),
    ],
)
def test_05_netpol_rejects_plausible_wrong_policies(
    kind_objects: list[Obj],
    solved_policy: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    seen: str,
) -> None:
    change(solved_policy)
    failed = rejected("05-netpol", solved_policy, objects=kind_objects)
    assert seen in failed.seen
    assert len(failed.seen) < 200  # the first wrong verdict, not every lint finding


def test_05_netpol_rejects_a_string() -> None:
    assert "not a NetworkPolicy" in rejected("05-netpol", "loadgen-egress").seen


def test_05_netpol_solution_passes(run_solution: Callable[[str], list[exercises.Result]]) -> None:
    [result] = run_solution("05-netpol")
    assert result.status == "passed"


def test_every_solution_file_is_a_registered_exercise() -> None:
    solutions = exercises.solution_path("05-pdb", get_settings().repo_root).parent
    solved = sorted(p.stem for p in solutions.glob("0[45]-*.py"))
    assert solved == ["04-strategy", "05-netpol", "05-pdb"]
    for exercise in solved:  # an unknown id raises LabError; untouched means not attempted
        assert exercises.verify(exercise).status == "not attempted"
