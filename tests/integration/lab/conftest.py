"""The lab on kind for the `kind`-marked modules of this folder: brought up by `KindTarget` on the
cluster pytest-kind made (`lab_kind_cluster`, tests/conftest.py), torn down after each module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_kind import KindCluster

from lab.k8s import NamespaceClient
from lab.settings import Settings
from lab.targets import Endpoints
from lab.targets.kind import KindTarget


@pytest.fixture(scope="module")
def lab_on_kind(lab_kind_cluster: KindCluster) -> Iterator[tuple[KindTarget, Endpoints]]:
    """The running kind target and its endpoints."""
    target = KindTarget(Settings.from_env())
    endpoints = target.up()
    try:
        yield target, endpoints
    finally:
        target.down()


@pytest.fixture(scope="module")
def cluster(lab_on_kind: tuple[KindTarget, Endpoints]) -> NamespaceClient:
    """The lab namespace's API (the target's own client)."""
    target, _ = lab_on_kind
    assert target.cluster is not None
    return target.cluster
