"""Pod chaos on a real kind cluster (marker `kind`): skipped where Docker cannot run."""

from __future__ import annotations

import pytest

from lab.chaos import Experiment, kill_pod
from lab.k8s import NamespaceClient

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)


def test_killed_pod_is_replaced(cluster: NamespaceClient) -> None:
    before = cluster.ready_pod_names("app=backend")
    killed = kill_pod(cluster, selector="app=backend")
    [pod] = killed["pod"]
    assert pod in before
    cluster.wait_rollout("backend", timeout=300)
    after = cluster.ready_pod_names("app=backend")
    assert pod not in after
    assert len(after) == len(before)


def test_evicting_every_backend_pod_is_refused_by_the_pdb(cluster: NamespaceClient) -> None:
    journal = Experiment(
        "the PDB keeps the backend available during voluntary disruptions",
        steady_state=[lambda: len(cluster.ready_pod_names("app=backend")) >= 2],
        method=[
            (
                "evict all backend pods",
                lambda: [cluster.evict(pod) for pod in cluster.running_pod_names("app=backend")],
            )
        ],
        rollbacks=[lambda: cluster.wait_rollout("backend", timeout=300)],
    ).run()
    assert journal.status == "completed", journal.to_frame()
    evicted = journal.steps[1].output
    assert not all(outcome.evicted for outcome in evicted)
    assert "disruption budget" in " ".join(outcome.message for outcome in evicted).lower()
