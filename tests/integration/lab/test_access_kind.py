"""What Prometheus may do, asked of a real API server (marker `kind`): skipped where Docker
cannot run. The same questions as notebook 01's can-i cell, so the notebook's claim is tested."""

from __future__ import annotations

import pytest

from lab.k8s import NamespaceClient, Question, service_account

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)


def test_prometheus_may_watch_pods_in_its_namespace_and_nothing_else(
    cluster: NamespaceClient,
) -> None:
    ns = cluster.namespace
    questions = [
        Question("list", "pods", ns),
        Question("watch", "pods", ns),
        Question("get", "secrets", ns),
        Question("list", "services", ns),
        Question("list", "pods", "default"),
        Question("list", "nodes"),
    ]
    answers = cluster.verdicts_frame(questions, user=service_account(ns, "prometheus"))
    assert answers["allowed"].tolist() == [True, True, False, False, False, False], answers


def test_kind_admin_may_list_nodes_and_review_others(cluster: NamespaceClient) -> None:
    assert cluster.can_i(Question("list", "nodes"))
    review = Question("create", "subjectaccessreviews", group="authorization.k8s.io")
    assert cluster.can_i(review)
