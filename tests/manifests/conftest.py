"""Rendered manifests shared by the offline checks (kubectl kustomize runs once per directory).

Every check that takes `kind_objects` (or a `namespace` argument) runs for the default
namespace and for a learner's (`NAMESPACES`): the render for another namespace must pass the
same checks (issue 9, item 7).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from backend.app import default_registry
from backend.observe import Metrics, PoolCollector
from lab import manifests, slo, slo_rules
from lab.credentials import generate
from lab.dashboard import GRAFANA_VARIABLES, substitute
from lab.settings import DEFAULT_NAMESPACE, get_settings

SETTINGS = get_settings()
NAMESPACES = (DEFAULT_NAMESPACE, "learner-07")
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


@pytest.fixture(scope="session")
def rendered() -> dict[Path, list[manifests.Obj]]:
    """Every Kustomization directory rendered with kubectl kustomize (components via overlays)."""
    return {d: manifests.build(d) for d in manifests.kustomizations(SETTINGS.manifests)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test with a `namespace` argument runs once per namespace of NAMESPACES."""
    if "namespace" in metafunc.fixturenames:
        metafunc.parametrize("namespace", NAMESPACES, scope="session")


# One stack's credentials for every render of the session (a render generates new ones each
# time: the comparisons between renders would otherwise see them differ).
CREDENTIALS = generate()


@functools.cache
def render(target: str, namespace: str) -> list[manifests.Obj]:
    """`lab.manifests.render(target, namespace=...)`, once per session (copy before mutating)."""
    return manifests.render(target, SETTINGS, namespace, credentials=CREDENTIALS)


@pytest.fixture(scope="session")
def kind_objects(namespace: str) -> list[manifests.Obj]:
    """What the lab applies to kind, in `namespace`."""
    return render("kind", namespace)


@pytest.fixture(scope="session")
def cluster_objects(namespace: str) -> list[manifests.Obj]:
    """What the cluster target applies, in `namespace`."""
    return render("cluster", namespace)


@pytest.fixture(scope="session")
def renders() -> Callable[[str, str], list[manifests.Obj]]:
    """The session's cached `render(target, namespace)`."""
    return render


@pytest.fixture(scope="session")
def known_metrics() -> frozenset[str]:
    """Every series name a query may select: the backend's samples (counter -> _total,
    histogram -> _bucket/_count/_sum), the recorded rules of both scales, Prometheus' own."""
    registry = default_registry()  # the backend's own, process_cpu_seconds_total included
    Metrics(registry)
    registry.register(PoolCollector(dict))
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    exported = {
        fam.name + suffix for fam in registry.collect() for suffix in suffixes.get(fam.type, [""])
    }
    recorded = {
        r["record"]
        for scale in slo.SCALES
        for g in slo_rules.rule_groups(scale)["groups"]
        for r in g["rules"]
        if "record" in r
    }
    return frozenset(exported | recorded | PROMETHEUS_SERIES)


def _metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (fails on selectors without a fixed name)."""
    expr = substitute(expr, GRAFANA_VARIABLES)  # as Grafana fills them in, production scale
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


@pytest.fixture(scope="session")
def metric_names() -> Callable[[str], set[str]]:
    """The parser of metric names in PromQL (Grafana variables filled in)."""
    return _metric_names
