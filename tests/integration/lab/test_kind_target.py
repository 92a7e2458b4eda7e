"""The kind target on a real cluster (marker `kind`): skipped where Docker cannot run."""

from __future__ import annotations

import pytest
from pytest_kind import KindCluster

from lab.k8s import NamespaceClient
from lab.net import http_ok
from lab.targets import Endpoints
from lab.targets.kind import KindTarget

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)


@pytest.fixture(scope="module")
def kind(
    lab_on_kind: tuple[KindTarget, Endpoints], cluster: NamespaceClient
) -> tuple[KindTarget, Endpoints, NamespaceClient]:
    target, endpoints = lab_on_kind
    return target, endpoints, cluster


def test_every_backend_pod_is_forwarded_and_ready(
    kind: tuple[KindTarget, Endpoints, NamespaceClient],
) -> None:
    _, endpoints, cluster = kind
    assert len(endpoints.backends) == len(cluster.ready_pod_names("app=backend")) >= 3
    assert all(http_ok(f"{url}/health/ready") for url in endpoints.backends)
    assert http_ok(f"{endpoints.prometheus}/-/ready")
    assert endpoints.chaos_token


def test_the_pdb_refuses_evicting_below_its_minimum(
    kind: tuple[KindTarget, Endpoints, NamespaceClient],
) -> None:
    _, _, cluster = kind
    outcomes = [cluster.evict(pod) for pod in cluster.ready_pod_names("app=backend")]
    assert any(o.refused for o in outcomes)
    cluster.wait_rollout("backend", timeout=300)


def test_network_policy_lets_other_namespaces_in_and_keeps_unlisted_lab_pods_in(
    kind: tuple[KindTarget, Endpoints, NamespaceClient],
) -> None:
    """backend:3000 is open to every source; a pod in ironclad-demo that no policy lists is
    stopped by default-deny on its own way out (egress, DNS included)."""
    _, _, cluster = kind
    url = f"http://backend.{cluster.namespace}.svc.cluster.local:3000/health/live"
    other = NamespaceClient("default", cluster.api_client, probe_image=cluster.probe_image)
    assert other.probe(url, labels={"app": "client"}).ok
    assert not cluster.probe(url, labels={"app": "stranger"}).ok


def test_the_cluster_pytest_kind_made_is_the_one_the_lab_uses(
    lab_kind_cluster: KindCluster, kind: tuple[KindTarget, Endpoints, NamespaceClient]
) -> None:
    """pytest-kind's kubectl (its own kubeconfig) sees the lab's namespace and 3 nodes."""
    _, _, cluster = kind
    nodes = lab_kind_cluster.kubectl("get", "nodes", "-o", "name").split()
    namespaces = lab_kind_cluster.kubectl("get", "namespaces", "-o", "name").split()
    assert len(nodes) == 3
    assert f"namespace/{cluster.namespace}" in namespaces
