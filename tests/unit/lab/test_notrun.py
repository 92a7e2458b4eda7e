"""A cluster cell on the local target is explained (calls, expectations, objects), not run."""

from __future__ import annotations

import pytest

from lab import notrun

CELL = """
first, second = env.k8s.ready_pod_names("app=backend")[:2]
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
        "env.k8s.ready_pod_names('app=backend')",
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


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "backend", "namespace": "ironclad-demo", "labels": {"app": "backend"}},
    "spec": {
        "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "backend",
                        "image": "ironclad/backend:dev",
                        "ports": [{"port": 3000}],
                        "env": [{"name": f"VAR_{i}", "value": str(i)} for i in range(8)],
                    }
                ]
            }
        },
    },
}
ROLLOUT = """
env.k8s.restart("backend")
lab.check(ready >= min_ready, expected=f"never below {min_ready} ready (maxUnavailable 1)")
"""


def test_an_object_is_trimmed_to_the_fields_the_cell_names_the_rest_folded() -> None:
    result = notrun.explain(ROLLOUT, "local", [DEPLOYMENT], ["Deployment/backend"])
    [shown] = result.objects
    assert "maxUnavailable: 1" in shown.used
    assert "image" not in shown.used  # not named by the cell: only in the whole object
    assert "image: ironclad/backend:dev" in shown.full
    html = result.html()
    assert '<pre style="font-family: monospace' in html  # YAML in a monospace font
    assert "<details><summary>the whole object</summary>" in html


def test_an_object_shown_by_an_earlier_cell_is_named_not_repeated() -> None:
    result = notrun.explain(
        ROLLOUT, "local", [DEPLOYMENT], ["Deployment/backend"], shown_before={"Deployment/backend"}
    )
    assert "shown above" in result.plain()
    assert "maxSurge" not in result.html()


def test_fields_are_filled_from_the_kernels_variables() -> None:
    kernel = {"min_ready": 2}
    result = notrun.explain(ROLLOUT, "local", namespace=kernel)
    assert result.expectations == ["never below 2 ready (maxUnavailable 1)"]
    assert kernel == {"min_ready": 2}  # read, never written


def test_fields_the_cell_defines_itself_are_filled_without_touching_the_cluster() -> None:
    cell = (
        "from lab.k8s import service_account\n"
        "WHO = service_account(NAMESPACE, 'prometheus')\n"
        "pods = env.k8s.pods()\n"
        "lab.check(pods, expected=f'{WHO} lists {len(pods)} pods in {NAMESPACE}')\n"
    )
    result = notrun.explain(cell, "local", namespace={"NAMESPACE": "demo", "env": object()})
    # WHO is computed (a pure call the cell imports); `pods` needs the cluster: left as source
    assert result.expectations == [
        "system:serviceaccount:demo:prometheus lists {len(pods)} pods in demo"
    ]


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
