"""Semantic lint of what the lab applies: one test per rule, and the NetworkPolicy paths."""

from __future__ import annotations

import pytest

from lab import lint, manifests, netpol
from lab.settings import get_settings

SETTINGS = get_settings()

RULES = [
    "selector-matches-template",
    "service-selects-pods",
    "service-target-port",
    "statefulset-headless-service",
    "hpa-target",
    "pdb-target",
    "pdb-below-replicas",
    "pdb-unhealthy-eviction",
    "hpa-owns-replicas",
    "topology-spread",
    "default-deny",
    "statefulset-storage",
    "discovery-rbac",
    "probes",
    "pod-security-restricted",
    "prometheus-annotations",
    "references-exist",
    "namespace-restricted",
    "network-policy-paths",
]


@pytest.mark.parametrize("rule", RULES)
def test_kind_overlay_passes_rule(
    kind_objects: list[manifests.Obj], namespace: str, rule: str
) -> None:
    broken = [str(f) for f in lint.lint(kind_objects, namespace) if f.rule == rule]
    assert not broken, "\n".join(broken)


def test_every_rule_is_listed(kind_objects: list[manifests.Obj], namespace: str) -> None:
    """A finding with a rule missing from RULES would slip past the per-rule tests."""
    assert {f.rule for f in lint.lint(kind_objects, namespace)} <= set(RULES)


def test_backend_hpa_and_pdb_target_the_backend(
    kind_objects: list[manifests.Obj], namespace: str
) -> None:
    by_id = {manifests.ident(o): o for o in kind_objects}
    hpa = by_id["HorizontalPodAutoscaler", namespace, "backend-hpa"]["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == (
        "Deployment",
        "backend",
    )
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    # Lab timing: scale-down shorter than Kubernetes' default 300 s stabilization window.
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] < 300
    pdb = by_id["PodDisruptionBudget", namespace, "backend-pdb"]["spec"]
    assert pdb["minAvailable"] == 2
    assert pdb["selector"] == {"matchLabels": {"app": "backend"}}


def path_id(conn: netpol.Connection) -> str:
    return f"{conn.source.name}->{conn.target.name}:{conn.port}/{conn.protocol}"


def test_lab_paths_cover_the_issue(kind_objects: list[manifests.Obj], namespace: str) -> None:
    ids = {path_id(c) for c in netpol.lab_paths(kind_objects, namespace)}
    assert {
        "backend->postgres:5432/TCP",
        "backend->internet (203.0.113.10):443/TCP",
        "pod in namespace other->backend:3000/TCP",
        "pod in namespace other->postgres:5432/TCP",
        "prometheus->backend:3000/TCP",
        "backend->kube-dns:53/UDP",
    } <= ids


def test_network_paths(kind_objects: list[manifests.Obj], namespace: str) -> None:
    """Every path the lab intends, allowed or denied as intended, in this namespace."""
    paths = netpol.lab_paths(kind_objects, namespace)
    assert {path_id(c) for c in paths} == {
        path_id(c) for c in netpol.lab_paths(manifests.render("kind", SETTINGS), SETTINGS.namespace)
    }
    wrong = [
        str(verdict.finding())
        for verdict in map(lambda c: netpol.evaluate(kind_objects, c), paths)
        if verdict.allowed != verdict.expected
    ]
    assert wrong == []


def test_backend_probes_and_scrape_path_are_routes_the_backend_serves(
    kind_objects: list[manifests.Obj], namespace: str
) -> None:
    from backend import routes

    served = set().union(*(h.paths for h in (routes.live, routes.ready, routes.metrics)))
    deployment = next(
        o for o in kind_objects if manifests.ident(o) == ("Deployment", namespace, "backend")
    )
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    used = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    used.add(pod["metadata"]["annotations"]["prometheus.io/path"])
    assert used <= served
    assert set(lint.METRICS_PATHS) <= served
