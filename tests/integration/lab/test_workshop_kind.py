"""workshop provision / status / teardown on a real kind cluster (marker `kind`; skipped where
Docker cannot run, so NOT run where it was written: written for the workflow's kind-tests job).

One throwaway single-node cluster stands in for the shared cluster. What no offline test can
check: the API server accepts the objects, the TokenRequest token in the written kubeconfig
authenticates, the learner Role really confines the learner to their namespaces (403
elsewhere), the admission policy's CEL compiles in the API server and refuses what
tests/unit/lab/workshop/test_guard.py says it refuses, a namespace that is not the workshop's
stops provision, a learner can record a run summary that the instructor's status reads, and
teardown leaves nothing labelled behind.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.k8s import NamespaceClient
from lab.settings import Settings
from lab.targets.kind import kind_binary
from lab.workshop.api import KubeInstructorApi
from lab.workshop.provision import make_plan, new_uid, owned, provision, teardown
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


def refused(call: object, status: int = 403) -> str:
    """The API server's message refusing `call()` (which must fail with `status`)."""
    with pytest.raises(ApiException) as info:
        call()  # type: ignore[operator]
    assert info.value.status == status, info.value.body
    return str(info.value.body)


def test_provision_status_teardown(admin: KubeInstructorApi, tmp_path: Path) -> None:
    uid = new_uid()
    plan = make_plan(Settings.from_env(), 2, "wl-", WORKSHOP, uid)
    admin.admin.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="wl-02"))
    )
    with pytest.raises(LabError, match="namespace wl-02 exists and is not a workshop's"):
        provision(plan, admin, tmp_path, 3600)
    assert admin.namespace("wl-01") is None  # nothing was created
    admin.admin.core.delete_namespace("wl-02")
    while admin.namespace("wl-02") is not None:
        time.sleep(1)
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

    # the admission policy, live: what RBAC allows a learner and the policy refuses
    escape = client.V1Pod(  # Pod Security "restricted" admits it: only the policy refuses
        metadata=client.V1ObjectMeta(name="keep-my-token"),
        spec=client.V1PodSpec(
            service_account_name="learner",
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=65532,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            ),
            containers=[
                client.V1Container(
                    name="c",
                    image="registry.k8s.io/pause:3.10",
                    security_context=client.V1SecurityContext(
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                    ),
                )
            ],
        ),
    )
    assert "ServiceAccount 'learner'" in refused(
        lambda: learner.create_namespaced_pod("wl-01", escape)
    )
    token_secret = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name="forever", annotations={"kubernetes.io/service-account.name": "learner"}
        ),
        type="kubernetes.io/service-account-token",
    )
    refused(lambda: learner.create_namespaced_secret("wl-01", token_secret))
    exposed = client.V1Service(
        metadata=client.V1ObjectMeta(name="exposed"),
        spec=client.V1ServiceSpec(
            external_ips=["192.0.2.1"], ports=[client.V1ServicePort(port=80)]
        ),
    )
    refused(lambda: learner.create_namespaced_service("wl-01", exposed))
    rbac_api = client.RbacAuthorizationV1Api(learner.api_client)
    everyone = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "prometheus", "namespace": "wl-01"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "ironclad-learner"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": "system:authenticated"}],
    }  # fmt: skip
    refused(
        lambda: rbac_api.patch_namespaced_role_binding(
            "prometheus",
            "wl-01",
            everyone,
            field_manager="test",
            _content_type="application/apply-patch+yaml",
        )
    )

    summary = {
        "target": "cluster",
        "notebooks": [{"name": "01-namespace", "status": "passed", "checks_passed": 2}],
    }
    own = NamespaceClient("wl-01", learner.api_client, shared=True)
    assert record_summary(summary, own) == 1
    board = {s.namespace: s for s in status(admin, WORKSHOP, uid)}
    assert board["wl-01"].runs() == "01✓(2)"
    assert board["wl-02"].runs() == "no run recorded"

    target = owned(admin, WORKSHOP, uid)
    assert target.namespaces == tuple(sorted(names))
    teardown(admin, target, timeout=300)
    assert admin.namespaces(f"ironclad.lab/workshop={WORKSHOP}") == []
    with pytest.raises(LabError, match=f"There is no workshop {WORKSHOP}"):
        owned(admin, WORKSHOP, uid)
