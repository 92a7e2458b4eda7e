"""lab.reset: the per-lesson table, and the kind/cluster path against the fake API server.

The fake (`FakeApiServer` of this folder's conftest.py, extended here with label-selected lists, deletes,
StatefulSets and the HPA) checks that `reset_cluster` makes the right calls through the real
client: server-side apply of the overlay, deletion of run-time objects by label, waiting for
the workloads at the HPA's floor. It is not a cluster: what a cluster does with those calls
(controllers recreating pods, the HPA rescaling) is for the `kind`-marked tests. The local path
is tested end to end in tests/integration/lab/test_reset_local.py.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kubernetes import client

from lab.errors import LabError
from lab.k8s import Cluster
from lab.reset import EXERCISE_LABEL, LESSONS, PROBE_PODS, entry, removed_by, reset_cluster
from lab.targets.kind import IMAGE_ID_ANNOTATION


def _load(file_name: str, name: str) -> ModuleType:
    """A module of this folder loaded by path: pytest imports test and conftest files with
    importlib under names of its own, so they are not importable by theirs."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file_name))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake_api = _load("conftest.py", "lab_unit_fake_api")
NS = fake_api.NS
FakeApiServer = fake_api.FakeApiServer
pod_json = fake_api.pod_json
deployment_json = _load("test_k8s.py", "lab_unit_test_k8s").deployment_json


def test_every_lesson_01_to_07_has_an_entry_and_others_are_refused() -> None:
    assert sorted(LESSONS) == list(range(1, 8))
    assert entry(5).notebook == "05-scaling-and-resilience"
    with pytest.raises(LabError, match="There is no lesson 9") as info:
        entry(9)
    assert "1-7" in info.value.next_step


def test_a_reset_removes_the_run_time_objects_of_that_lesson_and_later_ones() -> None:
    assert PROBE_PODS in removed_by(1)
    assert PROBE_PODS in removed_by(5)  # 05 creates probe pods
    assert PROBE_PODS not in removed_by(6)
    assert all(EXERCISE_LABEL in removed_by(n) for n in LESSONS)


HPAS = "horizontalpodautoscalers"


class ResetFake(FakeApiServer):
    """FakeApiServer plus what a reset calls: label-selected lists and deletes of any kind,
    StatefulSets and the HPA."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}  # (plural, name) -> object
        self.statefulsets: dict[str, dict[str, Any]] = {}
        self.hpa_min = 3
        self.bodies: dict[str, Any] = {}  # path -> last PATCH body

    def matches(self, pod: dict[str, Any], selector: str | None) -> bool:
        labels = pod["metadata"].get("labels") or {}
        for term in (selector or "").split(","):
            if not term:
                continue
            if term.startswith("!"):
                if term[1:] in labels:
                    return False
            elif "=" in term:
                key, value = term.split("=")
                if labels.get(key) != value:
                    return False
            elif term not in labels:
                return False
        return True

    def route(
        self, method: str, parts: list[str], query: dict[str, str], body: Any, apply: bool
    ) -> tuple[int, Any]:
        if method == "PATCH":
            self.bodies["/" + "/".join(parts)] = copy.deepcopy(body)
        match method, parts:
            case "GET", ["api" | "apis", *_, "namespaces", _, plural] if plural not in (
                "pods",
                "events",
            ):
                items = [
                    o
                    for (kind, _), o in self.objects.items()
                    if kind == plural and self.matches(o, query.get("labelSelector"))
                ]
                return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
            case "DELETE", ["api" | "apis", *_, "namespaces", _, plural, name] if plural != "pods":
                if (plural, name) not in self.objects:
                    return self.not_found(name)
                return 200, self.objects.pop((plural, name))
            case "GET", ["apis", "apps", "v1", "namespaces", _, "statefulsets", name]:
                return 200, self.statefulsets[name]
            case "GET", [
                "apis",
                "autoscaling",
                "v2",
                "namespaces",
                _,
                "horizontalpodautoscalers",
                n,
            ]:
                return 200, {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": n, "namespace": NS},
                    "spec": {
                        "minReplicas": self.hpa_min,
                        "maxReplicas": 10,
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment"}
                        | {"name": "backend"},
                    },
                    "status": {"currentReplicas": 3, "desiredReplicas": 3},
                }
        status, payload = super().route(method, parts, query, body, apply)
        if method == "PATCH" and parts[-2:-1] == ["deployments"]:  # its controller: sees it at once
            payload["status"]["observedGeneration"] = payload["metadata"]["generation"]
        return status, payload


def statefulset_json() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres", "namespace": NS, "generation": 1},
        "spec": {
            "replicas": 1,
            "serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}},
            "template": {
                "metadata": {"labels": {"app": "postgres"}},
                "spec": {"containers": [{"name": "p", "image": "x"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "readyReplicas": 1,
            "currentRevision": "r1",
            "updateRevision": "r1",
        },
    }


def labelled(kind: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ResetFake]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the dynamic client's cache
    server = ResetFake()
    server.deployments["backend"] = deployment_json(3, 3, 3)
    server.statefulsets["postgres"] = statefulset_json()
    server.pods = {
        **{n: pod_json(n) for n in ("backend-a", "backend-b", "backend-c")},
        "postgres-0": pod_json("postgres-0", labels={"app": "postgres"}),
        "lab-probe-1": pod_json("lab-probe-1", labels={"app": "backend", "lab-probe": "x"}),
    }
    server.objects[("configmaps", "mine")] = labelled("ConfigMap", "mine", {EXERCISE_LABEL: "02"})
    server.objects[("configmaps", "lab")] = labelled("ConfigMap", "lab", {"app": "backend"})
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def cluster(fake: ResetFake) -> Cluster:
    return Cluster(NS, client.ApiClient(client.Configuration(host=fake.url)))


IMAGE = "ironclad-backend:lab"
OVERLAY = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lab"}, "data": {"a": "1"}},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend"},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "image": IMAGE}]}}},
    },
]


def test_reset_to_5_reapplies_the_overlay_and_removes_probe_pods_and_exercise_objects(
    fake: ResetFake, cluster: Cluster
) -> None:
    template = fake.deployments["backend"]["spec"]["template"]
    template["metadata"]["annotations"] = {IMAGE_ID_ANNOTATION: "sha256:loaded"}  # `up` stamped
    done = reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5, image=IMAGE)
    applied = fake.bodies[f"/apis/apps/v1/namespaces/{NS}/deployments/backend"]
    assert applied["spec"]["template"]["metadata"]["annotations"] == {
        IMAGE_ID_ANNOTATION: "sha256:loaded"  # kept: no rollout for nothing
    }
    assert [path for path, _, _ in fake.patches] == [
        f"/api/v1/namespaces/{NS}",
        f"/api/v1/namespaces/{NS}/configmaps/lab",
        f"/apis/apps/v1/namespaces/{NS}/deployments/backend",
    ]
    assert {q["fieldManager"] for _, _, q in fake.patches} == {"ironclad-lab"}
    assert sorted(fake.pods) == ["backend-a", "backend-b", "backend-c", "postgres-0"]
    assert list(fake.objects) == [("configmaps", "lab")]  # the exercise's ConfigMap is gone
    assert done == [
        "applied 3 objects (server-side apply)",
        "deleted Pod/lab-probe-1 (lab-probe)",
        f"deleted ConfigMap/mine ({EXERCISE_LABEL})",
        "backend: 3 ready (HPA floor 3), postgres ready",
    ]
    again = reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5, image=IMAGE)
    assert again == ["applied 3 objects (server-side apply)", done[-1]]


def test_reset_to_6_keeps_the_probe_pods_lesson_05_made(fake: ResetFake, cluster: Cluster) -> None:
    reset_cluster(cluster, copy.deepcopy(OVERLAY), 6, timeout=5, image=IMAGE)
    assert "lab-probe-1" in fake.pods


def test_a_backend_below_the_hpa_floor_fails_the_reset_with_where_to_look(
    fake: ResetFake, cluster: Cluster
) -> None:
    fake.deployments["backend"] = deployment_json(2, 2, 2)  # someone scaled it down
    with pytest.raises(LabError, match="2 ready pods, below the HPA's minReplicas 3") as info:
        reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5, image=IMAGE)
    assert "backend-hpa" in info.value.next_step
