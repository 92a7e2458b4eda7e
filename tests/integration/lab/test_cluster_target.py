"""The cluster target on a real cluster with a learner's credentials only (marker `kind`).

In the GitHub workflow kind stands in for the shared cluster: the workflow provisions a learner
(`ironclad-lab workshop provision`), pushes or loads the backend image, and sets
LAB_TEST_KUBECONFIG (that learner's kubeconfig), LAB_NAMESPACE and LAB_IMAGE. Skipped with
the reason where Docker cannot run (tests/conftest.py) or no learner was provisioned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from lab.k8s import ClusterWideError
from lab.net import http_ok
from lab.settings import Settings, peer_namespace
from lab.targets import Endpoints
from lab.targets.cluster import ClusterTarget

pytestmark = [pytest.mark.kind, pytest.mark.slow]
LEARNER_ENV = ("LAB_TEST_KUBECONFIG", "LAB_NAMESPACE", "LAB_IMAGE")


@pytest.fixture(scope="module")
def learner() -> Iterator[Settings]:
    missing = [name for name in LEARNER_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"needs a provisioned learner: set {', '.join(missing)} (the workflow does)")
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = os.environ["LAB_TEST_KUBECONFIG"]
    try:
        yield Settings.from_env()
    finally:
        if saved is None:
            os.environ.pop("KUBECONFIG")
        else:
            os.environ["KUBECONFIG"] = saved


@pytest.fixture(scope="module")
def running(learner: Settings) -> Iterator[tuple[ClusterTarget, Endpoints]]:
    target = ClusterTarget(learner)
    endpoints = target.up()
    try:
        yield target, endpoints
    finally:
        target.down()


def test_the_learner_runs_the_whole_stack_in_their_namespace(
    running: tuple[ClusterTarget, Endpoints],
) -> None:
    target, endpoints = running
    assert target.cluster is not None
    assert len(endpoints.backends) == len(target.cluster.ready_pod_names("app=backend")) >= 3
    assert all(http_ok(f"{url}/health/ready") for url in endpoints.backends)
    assert http_ok(f"{endpoints.prometheus}/-/ready")


def test_the_learner_cannot_read_anything_cluster_wide(
    running: tuple[ClusterTarget, Endpoints],
) -> None:
    target, _ = running
    assert target.cluster is not None
    with pytest.raises(ApiException) as refused:
        CoreV1Api(target.cluster.api_client).list_node()
    assert refused.value.status == 403
    with pytest.raises(ClusterWideError):
        target.cluster.nodes()


def test_the_peer_namespace_reaches_the_backend_and_an_unlisted_pod_is_held(
    running: tuple[ClusterTarget, Endpoints], learner: Settings
) -> None:
    target, _ = running
    cluster = target.cluster
    assert cluster is not None
    url = f"http://backend.{cluster.namespace}.svc.cluster.local:3000/health/live"
    peer = cluster.in_namespace(peer_namespace(learner.namespace, shared=True))
    assert peer.probe(url, labels={"app": "client"}).ok
    assert not cluster.probe(url, labels={"app": "stranger"}).ok


def test_down_removes_what_up_applied_and_keep_keeps_it(learner: Settings) -> None:
    """Last in the file on purpose: it removes the stack the module's `running` brought up."""
    kept = ClusterTarget(replace(learner, keep=True))
    kept.up()
    cluster = kept.cluster
    assert cluster is not None
    kept.down()
    assert cluster.apps.list_namespaced_deployment(cluster.namespace).items
    gone = ClusterTarget(learner)
    gone.up()
    gone.down()
    assert cluster.apps.list_namespaced_deployment(cluster.namespace).items == []
    assert cluster.core.read_namespace(cluster.namespace)  # the instructor's namespace stays
