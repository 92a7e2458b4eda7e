"""lab.reset: the per-lesson table, and the kind/cluster path against the fake API server.

The fake (`FakeApiServer` of tests/plugins/fake_kube_api.py, seeded with the live state `lab up`
leaves: the backend Deployment, its HPA, postgres, pods and ConfigMaps) checks that
`reset_cluster` makes the right calls through the real client: server-side apply of the overlay,
deletion of run-time objects by label, waiting for the workloads at the HPA's floor. It is not a
cluster: what a cluster does with those calls (controllers recreating pods, the HPA rescaling)
is for the `kind`-marked tests. The local path is tested end to end in
tests/integration/lab/test_reset_local.py.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_kube_api import NS, FakeApiServer, deployment_json, pod_json
from kubernetes import client

from lab import i18n
from lab.errors import LabError, LabTimeoutError
from lab.k8s import NamespaceClient
from lab.lessons import EXERCISE_LABEL, expected_parts
from lab.net import free_port
from lab.reset import fix_backends, reset_cluster
from lab.targets import Endpoints
from lab.targets.kind import IMAGE_ID_ANNOTATION, with_live_image_stamp


def statefulset_json() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres"},
        "spec": {
            "replicas": 1,
            "serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}},
            "template": {
                "metadata": {"labels": {"app": "postgres"}},
                "spec": {"containers": [{"name": "p", "image": "x"}]},
            },
        },
    }


def hpa_json() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "backend-hpa"},
        "spec": {
            "minReplicas": 3,
            "maxReplicas": 10,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        },
    }


def labelled(kind: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the dynamic client's cache
    server = FakeApiServer()
    for obj in (deployment_json(3, 3, 3), hpa_json(), statefulset_json()):
        server.put(obj)
    server.put(labelled("ConfigMap", "mine", {EXERCISE_LABEL: "02"}))
    server.put(labelled("ConfigMap", "lab", {"app": "backend"}))
    early = {**deployment_json(1, 0, 0), "metadata": {"name": "backend-too-early", "namespace": NS}}
    early["metadata"]["labels"] = {EXERCISE_LABEL: "03-order"}  # 03's, left by a dead kernel
    server.put(early)
    server.pods = {
        **{n: pod_json(n) for n in ("backend-a", "backend-b", "backend-c")},
        "postgres-0": pod_json("postgres-0", labels={"app": "postgres"}),
        "lab-probe-1": pod_json("lab-probe-1", labels={"app": "backend", "lab-probe": "x"}),
    }
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def cluster(fake: FakeApiServer) -> NamespaceClient:
    return NamespaceClient(NS, client.ApiClient(client.Configuration(host=fake.url)))


IMAGE = "ironclad-backend:lab"
OVERLAY = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "lab", "namespace": NS},
        "data": {"a": "1"},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "image": IMAGE}]}}},
    },
]


def test_reset_to_5_reapplies_the_overlay_and_removes_probe_pods_and_exercise_objects(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    template = fake.deployments["backend"]["spec"]["template"]
    template["metadata"]["annotations"] = {IMAGE_ID_ANNOTATION: "sha256:loaded"}  # `up` stamped
    stamped = with_live_image_stamp(cluster, copy.deepcopy(OVERLAY), IMAGE)  # as `reset` does
    done = reset_cluster(cluster, stamped, 5, timeout=5)
    applied = fake.applied[f"deployments/{NS}/backend"]
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
    configmaps = fake.store.of("v1", "configmaps", NS)
    assert [c["metadata"]["name"] for c in configmaps] == ["lab"]  # the exercise's one is gone
    assert done == [
        "applied 3 objects (server-side apply)",
        "deleted Pod/lab-probe-1 (lab-probe)",
        f"deleted ConfigMap/mine ({EXERCISE_LABEL})",
        f"deleted Deployment/backend-too-early ({EXERCISE_LABEL})",
        "postgres ready",
        "backend: 3 ready (HPA floor 3)",
    ]
    again = reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5)
    assert again == ["applied 3 objects (server-side apply)", *done[-2:]]


@pytest.mark.usefixtures("spanish")
def test_a_resets_lines_are_in_the_learners_language(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    done = reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5)
    assert done == [
        "3 objetos aplicados (server-side apply)",
        "eliminado Pod/lab-probe-1 (lab-probe)",
        f"eliminado ConfigMap/mine ({EXERCISE_LABEL})",
        f"eliminado Deployment/backend-too-early ({EXERCISE_LABEL})",
        "postgres listo",
        "backend: 3 listos (mínimo del HPA: 3)",
    ]


@pytest.mark.parametrize(
    ("language", "waiting_for"),
    [("en", "1 backend replica ready"), ("es", "1 réplica del backend lista")],
)
def test_a_reset_waiting_for_replicas_that_never_answer_times_out_naming_them(
    language: str, waiting_for: str
) -> None:
    """The local path: a replica whose port nobody listens on is never ready; the timeout
    names what it waited for (the one-replica form of the plural) and why (it does not
    answer), in the language in use."""
    i18n.use(language)
    backend = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LabTimeoutError) as info:
        fix_backends(Endpoints("local", backend, [backend], chaos_token="t"), timeout=0.5)
    assert info.value.what == waiting_for
    does_not_answer = "does not answer" if language == "en" else "no responde"
    assert f"{backend} {does_not_answer}" in info.value.detail


def test_a_reset_reapplies_only_the_parts_that_lesson_expects(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    """Lesson 04 starts before the backend: its reset neither applies nor waits for it."""
    parts = expected_parts(4)
    done = reset_cluster(cluster, copy.deepcopy(OVERLAY), 4, timeout=5, parts=parts)
    assert [path for path, _, _ in fake.patches] == [
        f"/api/v1/namespaces/{NS}",
        f"/api/v1/namespaces/{NS}/configmaps/lab",
    ]
    assert done[0] == "applied 2 objects (server-side apply)"
    assert done[-1] == "postgres ready"


def test_reset_to_6_keeps_the_probe_pods_lesson_05_made(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    reset_cluster(cluster, copy.deepcopy(OVERLAY), 6, timeout=5)
    assert "lab-probe-1" in fake.pods


def test_a_backend_below_the_hpa_floor_fails_the_reset_with_where_to_look(
    fake: FakeApiServer, cluster: NamespaceClient
) -> None:
    fake.put(deployment_json(2, 2, 2))  # someone scaled it down
    with pytest.raises(LabError, match="2 ready pods, below the HPA's minReplicas 3") as info:
        reset_cluster(cluster, copy.deepcopy(OVERLAY), 5, timeout=5)
    assert "backend-hpa" in info.value.next_step
