"""A cluster cell on the local target is explained (calls, expectations, objects), not run."""

from __future__ import annotations

import pytest

from lab import notrun

CELL = """
first, second = env.k8s.ready_pods("app=backend")[:2]
evictions = [env.k8s.evict(first), env.k8s.evict(second)]
!kubectl get pdb
lab.check(not evictions[0].refused and evictions[1].refused,
          expected="the PDB allows the first eviction and refuses the second",
          seen=[(e.pod, e.status) for e in evictions])
lab.check(True, expected=f"never below {min_ready} ready pods")
"""
PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "backend-pdb", "namespace": "ironclad-demo"},
    "spec": {"minAvailable": 2},
}


def test_calls_and_expectations_are_read_from_the_cell() -> None:
    result = notrun.explain(CELL, "local")
    assert result.calls == [
        "env.k8s.ready_pods('app=backend')",
        "env.k8s.evict(first)",
        "env.k8s.evict(second)",
    ]
    assert result.expectations == [
        "the PDB allows the first eviction and refuses the second",
        "never below {min_ready} ready pods",
    ]


def test_shown_objects_are_rendered_as_yaml_and_marked_not_run() -> None:
    result = notrun.explain(CELL, "local", [PDB], ["PodDisruptionBudget/backend-pdb", "Pod/x"])
    text = result.markdown()
    assert text.startswith("**⏭ Not run here**")
    assert "minAvailable: 2" in text
    assert "# Pod/x is not in the rendered manifests" in text
    payload = result.bundle()[notrun.MIMETYPE]
    assert payload["objects"] == ["PodDisruptionBudget/backend-pdb", "Pod/x"]  # type: ignore[index]


def test_a_cell_that_does_not_parse_still_says_it_was_not_run() -> None:
    result = notrun.explain("def broken(:\n", "local")
    assert result.calls == []
    assert result.expectations == []
    assert "Not run here" in result.markdown()


@pytest.mark.parametrize(
    ("line", "refs"),
    [
        ("", []),
        ("--show Deployment/backend", ["Deployment/backend"]),
        ("--show A/b C/d", ["A/b", "C/d"]),
    ],
)
def test_show_is_parsed_from_the_magic_line(line: str, refs: list[str]) -> None:
    assert notrun.parse_show(line) == refs
