"""The capability probes on a real kind cluster (marker `kind`): skipped where Docker cannot run.

kind >= v0.24 enforces NetworkPolicy with kindnet on a native Linux Docker host (the GitHub
runner), and `lab up --target kind` installs metrics-server: both probes must find them. A
cluster that fails open is the case the probe exists for; it cannot be produced on purpose here.
"""

from __future__ import annotations

import pytest

from lab.capabilities import metrics_server_serving, network_policy_enforced
from lab.k8s import NamespaceClient

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)


def test_kindnet_enforces_network_policy(cluster: NamespaceClient) -> None:
    result = network_policy_enforced(cluster)
    assert result.available, result.reason


def test_metrics_server_serves_the_hpa(cluster: NamespaceClient) -> None:
    result = metrics_server_serving(cluster, timeout=180)
    assert result.available, result.reason
