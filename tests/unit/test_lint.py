"""lab.lint on broken manifests: each message names the object, the field and the rule; and the
NetworkPolicy evaluator's semantics on small hand-written policies."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lab import lint

NS = "ironclad-demo"
KIND = lint.build(lint.MANIFESTS_DIR / "overlays" / "kind")
Mutation = Callable[[dict[tuple[str, str, str], lint.Obj]], None]


def pod_spec(objs: dict[tuple[str, str, str], lint.Obj], kind: str, name: str) -> Any:
    return objs[kind, NS, name]["spec"]["template"]["spec"]


def backend(objs: dict[tuple[str, str, str], lint.Obj]) -> Any:
    return pod_spec(objs, "Deployment", "backend")["containers"][0]


def drop_run_as_non_root(objs: dict[tuple[str, str, str], lint.Obj]) -> None:
    del pod_spec(objs, "Deployment", "backend")["securityContext"]["runAsNonRoot"]
    backend(objs)["securityContext"].pop("runAsNonRoot", None)


def set_in(path: tuple[str, str, str], keys: list[Any], value: Any) -> Mutation:
    """A mutation setting objs[path][k1][k2]... = value."""

    def mutate(objs: dict[tuple[str, str, str], lint.Obj]) -> None:
        target = objs[path]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return mutate


DEPLOY = ("Deployment", NS, "backend")
SVC = ("Service", NS, "backend")
CASES: list[tuple[str, Mutation, str, str, str]] = [
    (
        "no runAsNonRoot",
        drop_run_as_non_root,
        "Deployment/backend",
        "spec.template.spec.containers[backend].securityContext.runAsNonRoot",
        "pod-security-restricted",
    ),
    (
        "wrong selector",
        set_in(DEPLOY, ["spec", "selector"], {"matchLabels": {"app": "backnd"}}),
        "Deployment/backend",
        "spec.selector",
        "selector-matches-template",
    ),
    (
        "wrong targetPort",
        set_in(SVC, ["spec", "ports", 0, "targetPort"], 3001),
        "Service/backend",
        "spec.ports[0].targetPort",
        "service-target-port",
    ),
    (
        "unknown named targetPort",
        set_in(SVC, ["spec", "ports", 0, "targetPort"], "web"),
        "Service/backend",
        "spec.ports[0].targetPort",
        "service-target-port",
    ),
    (
        "service selects nothing",
        set_in(SVC, ["spec", "selector"], {"app": "frontend"}),
        "Service/backend",
        "spec.selector",
        "service-selects-pods",
    ),
    (
        "no readiness probe",
        lambda o: backend(o).pop("readinessProbe"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].readinessProbe",
        "probes",
    ),
    (
        "probe on a missing port",
        lambda o: backend(o)["livenessProbe"]["httpGet"].update(port="metrics"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].livenessProbe",
        "probes",
    ),
    (
        "no memory limit",
        lambda o: backend(o)["resources"]["limits"].pop("memory"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].resources.limits.memory",
        "resources",
    ),
    (
        "image latest",
        lambda o: backend(o).update(image="ironclad-backend:latest"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].image",
        "image-pinned",
    ),
    (
        "privileged",
        lambda o: backend(o)["securityContext"].update(privileged=True),
        "Deployment/backend",
        "spec.template.spec.containers[backend].securityContext.privileged",
        "pod-security-restricted",
    ),
    (
        "writable root filesystem",
        lambda o: backend(o)["securityContext"].update(readOnlyRootFilesystem=False),
        "Deployment/backend",
        "spec.template.spec.containers[backend].securityContext.readOnlyRootFilesystem",
        "read-only-root-filesystem",
    ),
    (
        "hostPath volume",
        lambda o: pod_spec(o, "Deployment", "backend")["volumes"].append(
            {"name": "host", "hostPath": {"path": "/"}}
        ),
        "Deployment/backend",
        "spec.template.spec.volumes[host]",
        "pod-security-restricted",
    ),
    (
        "PDB as large as replicas",
        set_in(("PodDisruptionBudget", NS, "backend-pdb"), ["spec", "minAvailable"], 3),
        "PodDisruptionBudget/backend-pdb",
        "spec.minAvailable",
        "pdb-below-replicas",
    ),
    (
        "PDB selects nothing",
        set_in(
            ("PodDisruptionBudget", NS, "backend-pdb"),
            ["spec", "selector"],
            {"matchLabels": {"app": "api"}},
        ),
        "PodDisruptionBudget/backend-pdb",
        "spec.selector",
        "pdb-target",
    ),
    (
        "replicas set under an HPA",
        set_in(DEPLOY, ["spec", "replicas"], 3),
        "Deployment/backend",
        "spec.replicas",
        "hpa-owns-replicas",
    ),
    (
        "PDB blocks evicting unhealthy pods",
        lambda o: o["PodDisruptionBudget", NS, "backend-pdb"]["spec"].pop(
            "unhealthyPodEvictionPolicy"
        ),
        "PodDisruptionBudget/backend-pdb",
        "spec.unhealthyPodEvictionPolicy",
        "pdb-unhealthy-eviction",
    ),
    (
        "spread only a preference",
        lambda o: pod_spec(o, "Deployment", "backend")["topologySpreadConstraints"][0].update(
            whenUnsatisfiable="ScheduleAnyway"
        ),
        "Deployment/backend",
        "spec.template.spec.topologySpreadConstraints",
        "topology-spread",
    ),
    (
        "spread counts tainted nodes",
        lambda o: pod_spec(o, "Deployment", "backend")["topologySpreadConstraints"][0].pop(
            "nodeTaintsPolicy"
        ),
        "Deployment/backend",
        "spec.template.spec.topologySpreadConstraints",
        "topology-spread",
    ),
    (
        "no spread at all",
        lambda o: pod_spec(o, "Deployment", "backend").pop("topologySpreadConstraints"),
        "Deployment/backend",
        "spec.template.spec.topologySpreadConstraints",
        "topology-spread",
    ),
    (
        "HPA on a missing Deployment",
        set_in(
            ("HorizontalPodAutoscaler", NS, "backend-hpa"),
            ["spec", "scaleTargetRef", "name"],
            "api",
        ),
        "HorizontalPodAutoscaler/backend-hpa",
        "spec.scaleTargetRef",
        "hpa-target",
    ),
    (
        "scrape annotation on a wrong port",
        set_in(
            DEPLOY, ["spec", "template", "metadata", "annotations", "prometheus.io/port"], "8080"
        ),
        "Deployment/backend",
        "spec.template.metadata.annotations[prometheus.io/port]",
        "prometheus-annotations",
    ),
    (
        "scrape annotation on a wrong path",
        set_in(
            DEPLOY, ["spec", "template", "metadata", "annotations", "prometheus.io/path"], "/metric"
        ),
        "Deployment/backend",
        "spec.template.metadata.annotations[prometheus.io/path]",
        "prometheus-annotations",
    ),
    (
        "missing secret key",
        lambda o: backend(o)["env"][0]["valueFrom"]["secretKeyRef"].update(key="PASSWORD"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].env[0].valueFrom.secretKeyRef",
        "references-exist",
    ),
    (
        "postgres Service not headless",
        lambda o: o["Service", NS, "postgres"]["spec"].pop("clusterIP"),
        "StatefulSet/postgres",
        "spec.serviceName",
        "statefulset-headless-service",
    ),
    (
        "namespace not restricted",
        lambda o: o["Namespace", "", NS]["metadata"]["labels"].pop(
            "pod-security.kubernetes.io/enforce"
        ),
        "Namespace/ironclad-demo",
        "metadata.labels[pod-security.kubernetes.io/enforce]",
        "namespace-restricted",
    ),
    (
        "postgres open to every pod",
        lambda o: o["NetworkPolicy", NS, "postgres"]["spec"]["ingress"][0].pop("from"),
        "NetworkPolicy/postgres",
        "spec.ingress",
        "network-policy-paths",
    ),
    (
        "prometheus cannot reach the backend",
        lambda o: o["NetworkPolicy", NS, "prometheus"]["spec"]["egress"].pop(0),
        "NetworkPolicy/prometheus",
        "spec.egress",
        "network-policy-paths",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "obj", "field", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_broken_manifest_is_reported(mutate: Mutation, obj: str, field: str, rule: str) -> None:
    objects = copy.deepcopy(KIND)
    mutate({lint.ident(o): o for o in objects})
    messages = [str(f) for f in lint.lint(objects)]
    wanted = f"{obj} {field}: "
    assert any(m.startswith(wanted) and m.endswith(f"[rule: {rule}]") for m in messages), (
        f"expected a finding starting {wanted!r} with rule {rule}, got:\n" + "\n".join(messages)
    )


def test_intact_manifests_have_no_findings() -> None:
    assert lint.lint(KIND) == []
    frame = lint.findings_frame([])
    assert list(frame.columns) == ["kind", "namespace", "name", "field", "rule", "message"]


# --- the evaluator on hand-written policies -------------------------------------------------


def policy(name: str, spec: dict[str, Any], namespace: str = "a") -> lint.Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


WEB = lint.Endpoint("web", "a", {"app": "web", "tier": "front"}, {"http": 8080})
DB = lint.Endpoint("db", "a", {"app": "db"}, {"pg": 5432})
OUTSIDE = lint.Endpoint("outside", ip="10.1.2.3")


def allowed(
    objects: list[lint.Obj],
    src: lint.Endpoint,
    dst: lint.Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    return lint.evaluate(objects, lint.Connection(src, dst, port, protocol)).allowed


def test_no_policy_allows_everything() -> None:
    assert allowed([], WEB, DB, 5432)


def test_ingress_isolation_with_named_port_and_expressions() -> None:
    pol = policy(
        "db",
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchExpressions": [
                                    {"key": "tier", "operator": "In", "values": ["front"]}
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": "pg"}],
                }
            ],
        },
    )
    assert allowed([pol], WEB, DB, 5432)
    assert not allowed([pol], WEB, DB, 5433)
    assert not allowed([pol], WEB, DB, 5432, "UDP")
    assert not allowed([pol], lint.Endpoint("other", "a", {"tier": "back"}), DB, 5432)
    assert allowed([pol], DB, WEB, 8080)  # the policy does not isolate web


def test_egress_ip_block_with_except_and_port_range() -> None:
    pol = policy(
        "web",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}}],
                    "ports": [{"port": 8000, "endPort": 8100}],
                }
            ],
        },
    )
    assert allowed([pol], WEB, OUTSIDE, 8080)
    assert not allowed([pol], WEB, OUTSIDE, 9000)
    assert not allowed([pol], WEB, lint.Endpoint("blocked", ip="10.9.1.1"), 8080)
    assert not allowed([pol], WEB, DB, 8080), "pods never match ipBlock peers here"


def test_namespace_selector_uses_the_automatic_name_label() -> None:
    pol = policy(
        "db",
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}}
                    ]
                }
            ],
        },
    )
    assert allowed([pol], lint.Endpoint("b-pod", "b"), DB, 1)
    assert not allowed([pol], lint.Endpoint("c-pod", "c"), DB, 1)
    assert not allowed([pol], WEB, DB, 1), "same namespace is not namespace b"


def test_verdicts_frame_lists_each_path() -> None:
    frame = lint.verdicts_frame(lint.evaluate_paths(KIND))
    row = frame[(frame.source == "backend") & (frame.target == "postgres") & (frame.port == 5432)]
    assert row.allowed.tolist() == [True]
    assert row.expected.tolist() == [True]
    assert (frame.allowed == frame.expected).all()
