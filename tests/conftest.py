"""Shared test configuration: folder-based markers, the `kind` skip, the PostgreSQL fixture and
the lab's kind cluster (pytest-kind)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pytest_kind import KindCluster

from lab.procs import PostgresServer
from lab.settings import Settings
from lab.targets import docker_problem

TESTS_DIR = Path(__file__).parent
FOLDER_MARKERS = ("unit", "integration", "manifests", "notebooks")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the name of its top-level folder (unit, integration, ...), and skip
    the `kind` tests, with the reason, where no kind cluster can run (Docker does not answer)."""
    kind_problem: str | None = None
    for item in items:
        folder = Path(item.path).relative_to(TESTS_DIR).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(folder)
        if item.get_closest_marker("kind") is not None:
            if kind_problem is None:  # asked once, and only when a kind test was collected
                kind_problem = docker_problem() or ""
            if kind_problem:
                item.add_marker(pytest.mark.skip(f"no kind cluster possible here: {kind_problem}"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session (temp dir, free loopback port)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def lab_kind_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindCluster]:
    """The lab's kind cluster, created once per session by pytest-kind's `KindCluster` from
    manifests/kind/cluster.yaml with the lab's pinned kind (downloaded and sha256-checked by
    `lab.targets.kind.kind_binary` when none >= the pin is on PATH) and the node image that file
    pins. It carries the lab's cluster name, so `KindTarget` finds and reuses it. pytest-kind's
    `--keep-cluster` keeps it for the next run; otherwise it is deleted at the end."""
    from lab.targets.kind import kind_binary  # kubernetes client: only when a kind test runs

    settings = Settings.from_env()
    nodes = yaml.safe_load(settings.kind_config.read_text())["nodes"]
    kind = kind_binary(settings)
    kubectl = shutil.which("kubectl")
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    clusters = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, check=True)
    if settings.cluster_name in clusters.stdout.split():
        # pytest-kind reuses a cluster that exists but reads its kubeconfig from its own file,
        # which only `kind create` fills: fill it for a cluster an earlier `lab up` made.
        export = ["export", "kubeconfig", "--name", settings.cluster_name]
        subprocess.run([kind, *export, "--kubeconfig", str(kubeconfig)], check=True)
    cluster = KindCluster(
        settings.cluster_name,
        kubeconfig=kubeconfig,
        image=nodes[0]["image"],
        kind_path=Path(kind),
        kubectl_path=Path(kubectl) if kubectl else None,
    )
    cluster.create(config_file=settings.kind_config)
    try:
        yield cluster
    finally:
        if not request.config.getoption("keep_cluster"):
            cluster.delete()
