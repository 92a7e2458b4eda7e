"""lab.lint on broken manifests: each message names the object, the field and the rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from lab import i18n, lint, manifests
from lab.settings import get_settings

NS = "ironclad-demo"
KIND = manifests.render("kind", get_settings())
Mutation = Callable[[dict[tuple[str, str, str], manifests.Obj]], None]


def pod_spec(objs: dict[tuple[str, str, str], manifests.Obj], kind: str, name: str) -> Any:
    return objs[kind, NS, name]["spec"]["template"]["spec"]


def backend(objs: dict[tuple[str, str, str], manifests.Obj]) -> Any:
    return pod_spec(objs, "Deployment", "backend")["containers"][0]


def drop_run_as_non_root(objs: dict[tuple[str, str, str], manifests.Obj]) -> None:
    del pod_spec(objs, "Deployment", "backend")["securityContext"]["runAsNonRoot"]
    backend(objs)["securityContext"].pop("runAsNonRoot", None)


def set_in(path: tuple[str, str, str], keys: list[Any], value: Any) -> Mutation:
    """A mutation setting objs[path][k1][k2]... = value."""

    def mutate(objs: dict[tuple[str, str, str], manifests.Obj]) -> None:
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
        "probe on a missing port",
        lambda o: backend(o)["livenessProbe"]["httpGet"].update(port="metrics"),
        "Deployment/backend",
        "spec.template.spec.containers[backend].livenessProbe",
        "probes",
    ),
    (
        "privileged",
        lambda o: backend(o)["securityContext"].update(privileged=True),
        "Deployment/backend",
        "spec.template.spec.containers[backend].securityContext.privileged",
        "pod-security-restricted",
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
    mutate({manifests.ident(o): o for o in objects})
    messages = [str(f) for f in lint.lint(objects, NS)]
    wanted = f"{obj} {field}: "
    assert any(m.startswith(wanted) and m.endswith(f"[rule: {rule}]") for m in messages), (
        f"expected a finding starting {wanted!r} with rule {rule}, got:\n" + "\n".join(messages)
    )


def test_intact_manifests_have_no_findings() -> None:
    assert lint.lint(KIND, NS) == []
    frame = lint.findings_frame([])
    assert list(frame.columns) == ["kind", "namespace", "name", "field", "rule", "message"]


@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "must not be true"), ("es", "no debe ser true")],
)
def test_a_finding_speaks_the_learners_language(language: str, message: str) -> None:
    """The finding's message from lab.po; its object, field and rule (what a learner looks up
    in the manifest) stay as they are."""
    i18n.use(language)
    objects = copy.deepcopy(KIND)
    backend({manifests.ident(o): o for o in objects})["securityContext"]["privileged"] = True
    [finding] = lint.lint(objects, NS)
    assert (finding.field, finding.rule, finding.message) == (
        "spec.template.spec.containers[backend].securityContext.privileged",
        "pod-security-restricted",
        message,
    )
