"""workshop provision / status / teardown on a real kind cluster (marker `kind`; skipped where
Docker cannot run, so NOT run where it was written: written for the workflow's kind-tests job).

One throwaway single-node cluster stands in for the shared cluster. What no offline test can
check: the API server accepts the objects, the TokenRequest token in the written kubeconfig
authenticates, the learner Role really confines the learner to their namespaces (403
elsewhere), a learner can record a run summary that the instructor's status reads, and teardown
leaves nothing labelled behind.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.k8s import Cluster
from lab.settings import Settings
from lab.targets.kind import kind_binary
from lab.workshop.api import KubeInstructorApi
from lab.workshop.provision import make_plan, provision, teardown
from lab.workshop.status import record_summary, status

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)
WORKSHOP = f"test-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeInstructorApi]:
    """The instructor's API on a one-node kind cluster (its context in a private kubeconfig)."""
    settings = Settings.from_env()
    kind = kind_binary(settings)
    name = f"ironclad-workshop-{uuid.uuid4().hex[:6]}"
    work = tmp_path_factory.mktemp("kind-workshop")
    cluster = yaml.safe_load(settings.kind_config.read_text())
    cluster["name"] = name
    cluster["nodes"] = cluster["nodes"][:1]
    (work / "cluster.yaml").write_text(yaml.safe_dump(cluster))
    kubeconfig = work / "admin.kubeconfig"
    argv = [kind, "create", "cluster", "--config", str(work / "cluster.yaml"), "--wait", "180s"]
    try:
        subprocess.run([*argv, "--kubeconfig", str(kubeconfig)], check=True, capture_output=True)
        yield KubeInstructorApi(f"kind-{name}", kubeconfig)
    finally:
        subprocess.run([kind, "delete", "cluster", "--name", name], check=False)


def learner_api(path: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(path)))


def test_provision_status_teardown(admin: KubeInstructorApi, tmp_path: Path) -> None:
    plan = make_plan(Settings.from_env(), 2, "wl-", WORKSHOP)
    done = provision(plan, admin, tmp_path, 3600)
    provision(plan, admin, tmp_path, 3600)  # idempotent
    assert [p.learner for p in done] == ["wl-01", "wl-02"]
    names = {n.name for n in admin.namespaces(f"ironclad.lab/workshop={WORKSHOP}")}
    assert names == {"wl-01", "wl-01-peer", "wl-02", "wl-02-peer"}

    learner = learner_api(tmp_path / "wl-01.kubeconfig")
    learner.list_namespaced_pod("wl-01")
    learner.list_namespaced_pod("wl-01-peer")
    for forbidden in (
        lambda: learner.list_namespaced_pod("wl-02"),
        learner.list_node,
        learner.list_namespace,
    ):
        with pytest.raises(ApiException) as info:
            forbidden()
        assert info.value.status == 403

    summary = {
        "target": "cluster",
        "notebooks": [{"name": "01-namespace", "status": "passed", "checks_passed": 2}],
    }
    own = Cluster("wl-01", learner.api_client, shared=True)
    assert record_summary(summary, own) == 1
    board = {s.namespace: s for s in status(admin, WORKSHOP)}
    assert board["wl-01"].runs() == "01✓(2)"
    assert board["wl-02"].runs() == "no run recorded"

    assert teardown(admin, WORKSHOP, timeout=300) == sorted(names)
    assert teardown(admin, WORKSHOP, timeout=300) == []
