"""lab.targets.cluster against the recording fake API (tests/plugins/fake_kube_api.py): what `up`
applies and where, how it tears down, and the one-message errors of issue 9's "Bad input".

The fake rolls workloads out the moment they are applied and forwards ports to a local server:
these tests prove the target's calls and its reading of the answers, not a cluster's behaviour
(tests/integration/lab/test_cluster_target.py, marker `kind`, runs it on a real cluster).
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from lab.errors import LabError
from lab.k8s import PROBE_LABEL, BlockedError, ClusterWideError, ForbiddenError, probe_pod
from lab.lessons import expected_parts
from lab.net import http_ok
from lab.rbac import Rule
from lab.settings import Settings
from lab.targets import choose, make_target
from lab.targets.cluster import ClusterTarget

if TYPE_CHECKING:
    from fake_kube_api import FakeApiServer

NS = "ironclad-demo"
IMAGE = "registry.example/ironclad-backend:1"


@pytest.fixture
def settings(kubeconfig: str, discovery_cache: None) -> Settings:
    return replace(
        Settings.from_env({}),
        namespace=NS,
        registry_image=IMAGE,
        kube_context=kubeconfig,
        rollout_timeout=10.0,
    )


def test_up_applies_into_the_namespace_forwards_and_down_deletes_only_that(
    fake: FakeApiServer, upstream: tuple[str, int], settings: Settings
) -> None:
    fake.namespaces.add("other")
    target = ClusterTarget(settings)
    endpoints = target.up()
    try:
        assert endpoints.target == "cluster"
        assert len(endpoints.backends) == 3  # the HPA's minReplicas
        assert http_ok(f"{endpoints.backend}/health/ready")
        assert http_ok(f"{endpoints.prometheus}/-/ready")
        stored = fake.store.objects[("v1", "secrets", NS, "chaos-secret")]["data"]["CHAOS_TOKEN"]
        assert endpoints.chaos_token == base64.b64decode(stored).decode()  # generated, read back
        assert len(endpoints.chaos_token) == 32
        backend = fake.deployments["backend"]["spec"]["template"]["spec"]["containers"][0]
        assert backend["image"] == IMAGE
        namespaces = {ns for _, ns in fake.rules()}
        assert namespaces == {NS}  # nothing cluster-scoped, no other namespace
    finally:
        target.down()
    assert fake.store.objects == {}
    assert fake.pods == {}
    assert fake.namespaces == {NS, "other"}  # the namespace is the instructor's: it stays
    deletes = [path for method, path in fake.requests if method == "DELETE"]
    assert all(f"/namespaces/{NS}/" in path for path in deletes)


def test_lessons_build_their_parts_and_a_build_back_deletes_the_later_ones(
    fake: FakeApiServer, upstream: tuple[str, int], settings: Settings
) -> None:
    """Issue 21 item 1 on the cluster target: `up` for lesson 04 applies what 01-03 build (the
    Secrets, PostgreSQL) and no backend; `build` adds 04's part and forwards it; building back
    to lesson 03 deletes the backend's objects and its forwards, and nothing else."""
    target = ClusterTarget(settings, expected_parts(4))
    endpoints = target.up()
    try:
        assert target.parts == ("namespace", "config", "postgres")
        assert "postgres" in fake.statefulsets
        assert "backend" not in fake.deployments
        assert endpoints.backends == []
        assert endpoints.prometheus == ""
        assert len(endpoints.chaos_token) == 32  # 02's Secret is there
        target.build(expected_parts(5))  # 04's env.apply("backend")
        assert target.parts == expected_parts(5)
        assert len(target.endpoints.backends) == 3  # the HPA came with the Deployment
        assert http_ok(f"{target.endpoints.backend}/health/ready")
        hpa = ("autoscaling/v2", "horizontalpodautoscalers", NS, "backend-hpa")
        assert hpa in fake.store.objects
        target.build(expected_parts(4))
        assert "backend" not in fake.deployments
        assert hpa not in fake.store.objects
        assert "postgres" in fake.statefulsets
        assert target.endpoints.backends == []
    finally:
        target.down()
    assert fake.store.objects == {}


def test_down_does_not_wait_for_a_leftover_probe_pod_with_the_backend_label(
    fake: FakeApiServer, upstream: tuple[str, int], settings: Settings
) -> None:
    """Issue 20 item 8: a probe pod left behind (its `lab up` killed mid-probe) borrowed
    `app: backend` for a NetworkPolicy check; down's wait for the backend's pods to go counted
    it and waited its full timeout, then raised. No owner deletes it, so it stays (as on a
    real cluster), and down no longer waits for it."""
    target = ClusterTarget(settings)
    target.up()
    name = "lab-probe-0123abcd"
    probe = probe_pod(name, "http://backend:3000/health/ready", {"app": "backend"}, IMAGE)
    fake.pods[name] = fake.pod_json(name, ready=False, labels=probe.metadata.labels)
    assert probe.metadata.labels == {"app": "backend", PROBE_LABEL: name}
    target.down()  # raised LabTimeoutError after rollout_timeout before the fix
    assert fake.store.objects == {}
    assert list(fake.pods) == [name]


def test_keep_leaves_the_objects_and_the_next_up_keeps_the_stacks_credentials(
    fake: FakeApiServer, upstream: tuple[str, int], settings: Settings
) -> None:
    target = ClusterTarget(replace(settings, keep=True))
    first = target.up()
    target.down()
    assert "backend" in fake.deployments
    assert not [method for method, _ in fake.requests if method == "DELETE"]
    secret = ("v1", "secrets", NS, "postgres-secret")
    password = fake.store.objects[secret]["data"]["POSTGRES_PASSWORD"]
    again = ClusterTarget(replace(settings, keep=True))
    second = again.up()  # PostgreSQL's volume was initialised with the first password
    again.down()
    assert second.chaos_token == first.chaos_token
    assert fake.store.objects[secret]["data"]["POSTGRES_PASSWORD"] == password


def test_no_image_is_refused_before_any_request(fake: FakeApiServer, settings: Settings) -> None:
    with pytest.raises(LabError, match="needs the backend image") as info:
        ClusterTarget(replace(settings, registry_image=None)).up()
    assert "No backend image is published" in info.value.next_step
    assert fake.requests == []


def test_unknown_context_names_the_ones_there_are(fake: FakeApiServer, settings: Settings) -> None:
    with pytest.raises(LabError, match="no context 'nope' \\(it has: learner\\)") as info:
        ClusterTarget(replace(settings, kube_context="nope")).up()
    assert "KUBECONFIG" in info.value.next_step
    assert fake.requests == []


def test_a_missing_namespace_is_named_before_anything_is_applied(
    fake: FakeApiServer, settings: Settings
) -> None:
    fake.namespaces.clear()
    with pytest.raises(LabError, match=f"Namespace {NS} does not exist") as info:
        ClusterTarget(settings).up()
    assert "workshop provision" in info.value.next_step
    assert [m for m, _ in fake.requests if m != "GET"] == []


def test_a_namespace_without_pod_security_restricted_is_refused(
    fake: FakeApiServer, settings: Settings
) -> None:
    fake.namespace_labels[NS] = {"pod-security.kubernetes.io/enforce": "baseline"}
    with pytest.raises(LabError, match="not labelled for Pod Security 'restricted'") as info:
        ClusterTarget(settings).up()
    assert f"kubectl label namespace {NS} pod-security.kubernetes.io/enforce=restricted" in (
        info.value.next_step
    )
    assert [m for m, _ in fake.requests if m != "GET"] == []


def test_rbac_refusal_is_one_message_naming_the_action(
    fake: FakeApiServer, settings: Settings
) -> None:
    message = (
        'networkpolicies.networking.k8s.io "default-deny" is forbidden: User "learner" cannot '
        'patch resource "networkpolicies"'
    )
    fake.refuse[Rule("patch", "networking.k8s.io", "networkpolicies")] = (403, message)
    with pytest.raises(ForbiddenError, match="refused to apply NetworkPolicy/") as info:
        ClusterTarget(settings).up()
    assert "learner may not patch networkpolicies in namespace ironclad-demo" in info.value.problem
    assert "context learner" in info.value.problem
    assert "--context" in info.value.next_step
    assert fake.store.objects == {}  # what was applied before the refusal is removed again


def test_quota_refusal_says_so(fake: FakeApiServer, settings: Settings) -> None:
    message = "exceeded quota: learner-quota, requested: services=1, used: services=4, limited: 4"
    fake.refuse[Rule("patch", "", "services")] = (
        403,
        f'services "grafana" is forbidden: {message}',
    )
    with pytest.raises(ForbiddenError, match="quota of ironclad-demo is used up") as info:
        ClusterTarget(settings).up()
    assert "In context learner, cannot apply Service/" in info.value.problem
    assert "ResourceQuota" in info.value.next_step


def test_image_pull_back_off_fails_the_wait_at_once_with_the_last_event(
    fake: FakeApiServer, settings: Settings
) -> None:
    fake.pod_waiting = "ImagePullBackOff"
    fake.events = [
        fake.event_json(
            "Failed",
            "Pod",
            "postgres-0",
            'Failed to pull image "postgres:17.6": not found',
        )
    ]
    target = ClusterTarget(replace(settings, rollout_timeout=60.0))
    with pytest.raises(BlockedError, match="Pod postgres-0 cannot get its image") as info:
        target.up()  # a 60 s wait: failing at once is what this test is about
    assert "Last event: Failed Pod/postgres-0: Failed to pull image" in info.value.problem
    assert "in context learner" in info.value.problem
    assert "--image" in info.value.next_step


def test_quota_in_a_controller_event_fails_the_wait_at_once(
    fake: FakeApiServer, settings: Settings
) -> None:
    fake.pod_waiting = "ContainerCreating"
    message = 'pods "postgres-0" is forbidden: exceeded quota: learner-quota'
    fake.events = [fake.event_json("FailedCreate", "StatefulSet", "postgres", message)]
    with pytest.raises(BlockedError, match="StatefulSet/postgres cannot create its pods"):
        ClusterTarget(replace(settings, rollout_timeout=60.0)).up()


def test_cluster_wide_calls_are_refused_on_a_shared_cluster_before_any_request(
    fake: FakeApiServer, settings: Settings
) -> None:
    from lab.k8s import NamespaceClient

    shared = NamespaceClient(NS, fake.api_client(), shared=True)
    for call in (shared.nodes, shared.delete_namespace, lambda: shared.wait_api_service("x")):
        with pytest.raises(ClusterWideError, match="needs rights beyond namespace"):
            call()
    with pytest.raises(ClusterWideError, match=r"Namespace/[\w-]+ \(cluster-scoped\)"):
        shared.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    with pytest.raises(ClusterWideError, match="ConfigMap/c in namespace kube-system"):
        shared.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": NS},
                },
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "c", "namespace": "kube-system"},
                },
            ]
        )
    assert [m for m, _ in fake.requests if m != "GET"] == []  # discovery only


def test_auto_never_picks_cluster_and_cluster_is_only_taken_when_asked() -> None:
    settings = replace(Settings.from_env({}), namespace="learner-07", kube_context="ctx")
    assert choose("cluster", settings).name == "cluster"
    assert "ctx, namespace learner-07" in choose("cluster", settings).reason
    assert isinstance(make_target("cluster", settings), ClusterTarget)
    with pytest.raises(LabError, match="--replicas applies to the local target only"):
        make_target("cluster", settings, replicas=2)


def test_up_flags_reach_the_settings_of_the_cluster_target() -> None:
    from lab.cli import parser
    from lab.commands.stack import _settings

    argv = ["up", "--target", "cluster", "--namespace", "learner-07", "--context", "c"]
    args = parser().parse_args([*argv, "--image", "r.example/b:1", "--keep"])
    settings = _settings(args, Settings.from_env({}))
    assert (settings.namespace, settings.kube_context) == ("learner-07", "c")
    assert (settings.registry_image, settings.keep) == ("r.example/b:1", True)
    plain = _settings(parser().parse_args(["up"]), Settings.from_env({"LAB_NAMESPACE": "x"}))
    assert (plain.namespace, plain.keep, plain.registry_image) == ("x", False, None)


def test_a_notebook_on_the_cluster_target_gets_a_shared_namespace_client(
    fake: FakeApiServer, settings: Settings
) -> None:
    import os

    from lab.identity import resolve
    from lab.session import Lab
    from lab.targets import Endpoints

    endpoints = Endpoints(target="cluster", backend="http://127.0.0.1:1")
    identity = resolve("learner-07", settings.kube_context, image=IMAGE, shared=True)
    env = Lab(endpoints, "learner-07", os.getpid(), "", settings, identity=identity)
    assert (env.on_cluster, env.peer_namespace) == (True, "learner-07-peer")
    assert (env.k8s.namespace, env.k8s.shared, env.k8s.probe_image) == ("learner-07", True, IMAGE)
    with pytest.raises(ClusterWideError):
        env.k8s.nodes()


def test_a_probe_pod_refused_by_pod_security_says_so(fake: FakeApiServer) -> None:
    from lab.k8s import NamespaceClient

    message = 'pods "lab-probe-1" is forbidden: violates PodSecurity "restricted:latest": ...'
    fake.refuse[Rule("create", "", "pods")] = (403, message)
    cluster = NamespaceClient(NS, fake.api_client(), probe_image=IMAGE, shared=True)
    with pytest.raises(ForbiddenError, match="cannot create probe pod") as info:
        cluster.probe("http://backend:3000/", timeout=5)
    assert "Pod Security 'restricted'" in info.value.next_step


@pytest.mark.parametrize(
    ("target", "skipped"), [("local", True), ("kind", False), ("cluster", False)]
)
def test_the_runner_runs_needs_cluster_cells_on_every_cluster_target(
    target: str, skipped: bool
) -> None:
    from lab.runner.engine import CellPlan

    plan = CellPlan(target, cell_budget=1.0, deadline=0.0)
    assert plan.skip_cluster_cells is skipped
