"""The protections the lessons rely on exist and do what the lessons claim, proven by deleting
or weakening each one on a copy of the kind render and expecting a lint finding that says what
is wrong: default deny, PostgreSQL's persistent storage, the RBAC discovery needs (the PDB's
eviction policy, the HPA owning the replica count and the hard spread are proven the same way in
tests/unit/lab/test_lint.py). Plus: nothing cluster-scoped but the Namespace and metrics-server, and
the spread fits kind's two workers through a rolling update and a drain."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from lab import lint, manifests, slo
from lab.settings import Settings, get_settings

NS = "ironclad-demo"
KIND = manifests.render("kind", get_settings())
Mutation = Callable[[list[manifests.Obj]], None]


def get(objects: list[manifests.Obj], kind: str, name: str) -> manifests.Obj:
    """The lab's object of this kind and name, whatever its namespace (names are unique)."""
    return next(o for o in objects if manifests.ident(o)[::2] == (kind, name))


def drop(kind: str, name: str) -> Mutation:
    """A mutation deleting one object from the render."""

    def mutate(objects: list[manifests.Obj]) -> None:
        objects.remove(get(objects, kind, name))

    return mutate


def edit(kind: str, name: str, change: Callable[[manifests.Obj], Any]) -> Mutation:
    """A mutation changing one object in place."""
    return lambda objects: change(get(objects, kind, name))


def postgres(sts: manifests.Obj) -> Any:
    return sts["spec"]["template"]["spec"]["containers"][0]


def claim_to_empty_dir(sts: manifests.Obj) -> None:
    sts["spec"].pop("volumeClaimTemplates")
    sts["spec"]["template"]["spec"]["volumes"].append({"name": "postgres-storage", "emptyDir": {}})


def config_without_namespaces(cm: manifests.Obj) -> None:
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    config["scrape_configs"][0]["kubernetes_sd_configs"][0].pop("namespaces")
    cm["data"]["prometheus.yml"] = yaml.safe_dump(config)


def prometheus_config(objects: list[manifests.Obj]) -> manifests.Obj:
    return next(o for o in objects if o["metadata"]["name"].startswith("prometheus-config"))


PGDATA = 3  # index of PGDATA in the postgres container's env
MUTATIONS: list[tuple[str, Mutation, str, str]] = [
    # (what, mutation, rule, words the message must contain)
    ("default deny deleted", drop("NetworkPolicy", "default-deny-all"), "default-deny", "allowed"),
    (
        "default deny for ingress only",
        edit(
            "NetworkPolicy", "default-deny-all", lambda p: p["spec"].update(policyTypes=["Ingress"])
        ),
        "default-deny",
        "internet",
    ),
    (
        "default deny with an allow-all ingress rule",
        edit("NetworkPolicy", "default-deny-all", lambda p: p["spec"].update(ingress=[{}])),
        "default-deny",
        "pod in namespace other -> a new pod",
    ),
    (
        "PostgreSQL claim template deleted",
        edit("StatefulSet", "postgres", lambda s: s["spec"].pop("volumeClaimTemplates")),
        "statefulset-storage",
        "the data dies with the pod",
    ),
    (
        "PostgreSQL claim replaced by an emptyDir",
        edit("StatefulSet", "postgres", claim_to_empty_dir),
        "statefulset-storage",
        "claims: none",
    ),
    (
        "PGDATA moved off the claim",
        edit(
            "StatefulSet", "postgres", lambda s: postgres(s)["env"][PGDATA].update(value="/tmp/pg")
        ),
        "statefulset-storage",
        "PGDATA /tmp/pg",
    ),
    (
        "Prometheus Role deleted",
        drop("Role", "prometheus"),
        "discovery-rbac",
        "list and watch on pods",
    ),
    (
        "Prometheus RoleBinding deleted",
        drop("RoleBinding", "prometheus"),
        "discovery-rbac",
        "missing: ['list', 'watch']",
    ),
    (
        "Role without watch",
        edit("Role", "prometheus", lambda r: r["rules"][0].update(verbs=["get", "list"])),
        "discovery-rbac",
        "missing: ['watch']",
    ),
    (
        "Role on services instead of pods",
        edit("Role", "prometheus", lambda r: r["rules"][0].update(resources=["services"])),
        "discovery-rbac",
        "on pods in namespace '{namespace}'",
    ),
    (
        "RoleBinding to another ServiceAccount",
        edit("RoleBinding", "prometheus", lambda b: b["subjects"][0].update(name="default")),
        "discovery-rbac",
        "ServiceAccount 'prometheus'",
    ),
    (
        "Prometheus token not mounted",
        edit(
            "Deployment",
            "prometheus",
            lambda d: d["spec"]["template"]["spec"].update(automountServiceAccountToken=False),
        ),
        "discovery-rbac",
        "automountServiceAccountToken: False",
    ),
    (
        "discovery not limited to the namespace",
        lambda objects: config_without_namespaces(prometheus_config(objects)),
        "discovery-rbac",
        "cluster-wide rights",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "rule", "words"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_removing_a_protection_is_caught(
    renders: Any, namespace: str, mutate: Mutation, rule: str, words: str
) -> None:
    objects = copy.deepcopy(renders("kind", namespace))
    mutate(objects)
    found = [str(f) for f in lint.lint(objects, namespace) if f.rule == rule]
    every = "\n".join(map(str, lint.lint(objects, namespace)))
    assert found, f"no {rule} finding; all findings:\n{every}"
    words = words.format(namespace=namespace)
    assert any(words in f for f in found), f"no {rule} finding mentions {words!r}:\n" + "\n".join(
        found
    )


def test_the_intact_render_has_every_protection() -> None:
    rules = {m[2] for m in MUTATIONS}
    assert [f for f in lint.lint(KIND, NS) if f.rule in rules] == []


# --- nothing cluster-scoped for a learner ------------------------------------------------------


def cluster_scoped(objects: list[manifests.Obj]) -> list[str]:
    """Cluster-scoped objects other than the Namespace and the (kind-only) metrics-server."""
    return [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if not o["metadata"].get("namespace")
        and o["kind"] != "Namespace"
        and (o["metadata"].get("labels") or {}).get("k8s-app") != "metrics-server"
    ]


def test_nothing_cluster_scoped_but_the_namespace_and_metrics_server() -> None:
    assert cluster_scoped(KIND) == []
    role = get(KIND, "Role", "prometheus")
    as_cluster_role = {**role, "kind": "ClusterRole", "metadata": {"name": "prometheus"}}
    assert cluster_scoped([*KIND, as_cluster_role]) == ["ClusterRole/prometheus"]


def test_prometheus_reads_only_pods_in_its_namespace() -> None:
    """kubernetes_sd `role: pod` lists and watches pods; nothing else (no services, endpoints,
    endpointslices, nodes), and only in the namespace it discovers."""
    config = yaml.safe_load(prometheus_config(KIND)["data"]["prometheus.yml"])
    sds = [sd for job in config["scrape_configs"] for sd in job.get("kubernetes_sd_configs", [])]
    assert sds == [{"role": "pod", "namespaces": {"names": [NS]}}]
    assert get(KIND, "Role", "prometheus")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


# --- replica counts and the spread ----------------------------------------------------------


def test_min_backends_is_the_hpa_floor_and_the_local_default() -> None:
    """BackendTargetsMissing expects slo.MIN_BACKENDS targets: the HPA's floor on kind and the
    local target's default replica count must be the same number."""
    hpa = get(KIND, "HorizontalPodAutoscaler", "backend-hpa")
    assert hpa["spec"]["minReplicas"] == slo.MIN_BACKENDS
    assert Settings.from_env({}).replicas == slo.MIN_BACKENDS


@dataclass
class Node:
    name: str
    tainted: bool  # a NoSchedule taint the backend does not tolerate


def kind_nodes() -> list[Node]:
    """kind/cluster.yaml's nodes. kind taints its control-plane node NoSchedule
    (node-role.kubernetes.io/control-plane) when it has workers."""
    nodes = yaml.safe_load((get_settings().kind_config).read_text())["nodes"]
    return [Node(f"{n['role']}-{i}", n["role"] == "control-plane") for i, n in enumerate(nodes)]


def place(pods: dict[str, int], nodes: list[Node], constraint: dict[str, Any]) -> str | None:
    """Where the scheduler's PodTopologySpread filter lets one more pod go (the emptiest
    feasible node), or None (Pending). A node is a candidate if it is untainted; with
    nodeTaintsPolicy Honor only untainted nodes are domains, with Ignore (the default) every
    node with the hostname label is, so a tainted node counts as an empty domain."""
    honor = constraint.get("nodeTaintsPolicy", "Ignore") == "Honor"
    domains = [n.name for n in nodes if not (honor and n.tainted)]
    global_min = min(pods.get(d, 0) for d in domains)
    feasible = [
        n.name
        for n in nodes
        if not n.tainted and pods.get(n.name, 0) + 1 - global_min <= constraint["maxSkew"]
    ]
    return min(feasible, key=lambda n: pods.get(n, 0), default=None)


def rolling_update(nodes: list[Node], constraint: dict[str, Any], replicas: int) -> list[str]:
    """Start `replicas` pods, then replace them as maxSurge 1 / maxUnavailable 1 does: one new
    pod (replicas + 1 exist), then one old pod terminates (terminating pods no longer count),
    always from the node where that leaves the worst skew. Returns the problems."""
    pods: dict[str, int] = {}
    for i in range(replicas):
        where = place(pods, nodes, constraint)
        if where is None:
            return [f"replica {i + 1} of {replicas} stays Pending (pods per node: {pods})"]
        pods[where] = pods.get(where, 0) + 1
    for step in range(replicas):
        where = place(pods, nodes, constraint)
        if where is None:
            return [f"surge pod {step + 1} stays Pending (pods per node: {pods})"]
        pods[where] += 1
        emptiest = min((n for n in pods if pods[n]), key=lambda n: pods[n])
        pods[emptiest] -= 1
    return []


def backend_spread() -> tuple[dict[str, Any], int, int]:
    deployment = get(KIND, "Deployment", "backend")
    (constraint,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    return (
        constraint,
        get(KIND, "HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"],
        surge,
    )


def test_spread_fits_kind_through_a_rolling_update_and_a_drain() -> None:
    """3 replicas + maxSurge 1 on kind's 2 workers with maxSkew 1 (DoNotSchedule):
    3 pods go 2/1 (skew 1), the surge pod makes 4 = 2/2 (skew 0), and after an old pod
    terminates it is 2/1 again; a new pod can always go to the emptiest worker, because
    count + 1 - min = 1 <= maxSkew there. With nodeTaintsPolicy Ignore the tainted
    control-plane would be a third domain with 0 pods: min stays 0, each worker takes at most 1
    pod, and the third replica stays Pending. A drain cordons a worker (a NoSchedule taint):
    with Honor every replica fits on the other worker."""
    constraint, replicas, surge = backend_spread()
    assert (constraint["maxSkew"], surge, replicas) == (1, 1, 3)
    assert constraint["whenUnsatisfiable"] == "DoNotSchedule"  # what `place` models
    nodes = kind_nodes()
    assert [n.tainted for n in nodes].count(False) == 2
    assert rolling_update(nodes, constraint, replicas) == []
    cordoned = [Node(n.name, n.tainted or n.name == nodes[1].name) for n in nodes]
    assert rolling_update(cordoned, constraint, replicas) == []
    ignore = {**constraint, "nodeTaintsPolicy": "Ignore"}
    assert rolling_update(nodes, ignore, replicas) == [
        "replica 3 of 3 stays Pending (pods per node: {'worker-1': 1, 'worker-2': 1})"
    ]
