"""The namespace is a parameter: renders for another namespace differ from the default's only
in the namespace, the cluster target's has nothing cluster-scoped, and a literal the generated
overlay does not rewrite is caught (issue 9, items 1, 2 and 7)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import manifests, pod_templates
from lab.credentials import GENERATED
from lab.errors import LabError
from lab.settings import DEFAULT_NAMESPACE, get_settings
from lab.targets import spec

SETTINGS = get_settings()
LEARNER = "learner-07"
# kustomize appends a 10-character content hash to generated ConfigMap/Secret names.
HASHED = re.compile(r"(.+)-([a-z0-9]{10})")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService", "Node"}


def normalized(objects: list[manifests.Obj], namespace: str) -> list[Any]:
    """The objects with their namespace written as <namespace> and the hash suffixes of
    generated names as <hash> (the hash of a ConfigMap naming the namespace differs too),
    sorted (kustomize orders objects by namespace among other things)."""
    text = json.dumps(objects, sort_keys=True).replace(namespace, "<namespace>")
    for obj in objects:
        match = HASHED.fullmatch(obj["metadata"]["name"])
        if obj["kind"] in ("ConfigMap", "Secret") and match:
            text = text.replace(match[0], f"{match[1]}-<hash>")
    return sorted(json.loads(text), key=lambda obj: json.dumps(obj, sort_keys=True))


@pytest.mark.parametrize("target", ["kind", "cluster"])
def test_renders_differ_only_in_the_namespace(renders: Any, target: str) -> None:
    default, learner = renders(target, DEFAULT_NAMESPACE), renders(target, LEARNER)
    assert default != learner
    assert DEFAULT_NAMESPACE not in json.dumps(learner)
    assert normalized(learner, LEARNER) == normalized(default, DEFAULT_NAMESPACE)


def test_the_cluster_render_is_all_in_the_learners_namespace(renders: Any) -> None:
    objects = renders("cluster", LEARNER)
    assert {o["kind"] for o in objects} & CLUSTER_SCOPED == set()
    assert {o["metadata"].get("namespace") for o in objects} == {LEARNER}
    binding = manifests.find(objects, "RoleBinding", "prometheus")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": LEARNER}
    ]


def test_kind_is_the_cluster_render_plus_its_namespace_node_port_and_metrics_server(
    renders: Any, namespace: str
) -> None:
    kind, cluster = renders("kind", namespace), renders("cluster", namespace)
    # The one other difference: lesson 05's peer is `default` on kind, <namespace>-peer shared.
    peer = manifests.find(kind, "NetworkPolicy", "backend")["spec"]["ingress"][0]["from"][1]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "default"}
    kind = manifests.with_peer_namespace(copy.deepcopy(kind), f"{namespace}-peer", "default")
    kind_only = [o for o in kind if o not in cluster]
    assert [o for o in cluster if o not in kind] == []
    assert {manifests.ident(o)[0] for o in kind_only if not o["metadata"].get("namespace")} == {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "APIService",
    }
    namespace_object = manifests.find(kind, "Namespace", namespace)
    assert namespace_object["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    others = {o["metadata"].get("namespace") for o in kind_only} - {None, namespace}
    assert others == {"kube-system"}  # metrics-server stays where it belongs
    in_namespace = [manifests.ident(o) for o in kind_only if o["metadata"].get("namespace")]
    assert sorted(i for i in in_namespace if i[1] == namespace) == [  # components/node-port
        ("NetworkPolicy", namespace, "backend-from-node-port"),
        ("Service", namespace, "backend-node-port"),
    ]


def without_secret_values(objects: list[manifests.Obj]) -> list[manifests.Obj]:
    """The objects with every Secret's values blanked (each render generates its own)."""
    return [
        {**o, "data": dict.fromkeys(o.get("data", {}), "")} if o["kind"] == "Secret" else o
        for o in objects
    ]


def with_parsed_prometheus_config(objects: list[manifests.Obj]) -> list[Any]:
    """`normalized`, with the Prometheus configuration compared as data, not text (the
    generated one has no comments)."""
    copied = json.loads(json.dumps(objects))
    for obj in copied:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("prometheus-config"):
            obj["data"]["prometheus.yml"] = yaml.safe_load(obj["data"]["prometheus.yml"])
    return normalized(copied, DEFAULT_NAMESPACE)


@pytest.mark.parametrize("target", ["kind", "cluster"])
def test_the_overlay_directories_are_the_default_render(renders: Any, target: str) -> None:
    """`kubectl kustomize manifests/overlays/<target>` (the readable source) and the generated
    overlay for the default namespace hold the same objects, but for the stack's Secrets: the
    committed source has none, the render generates them (lab.credentials)."""
    direct = manifests.build(SETTINGS.manifests / manifests.RENDERABLE[target].directory)
    peer = spec(target).peer_namespace(DEFAULT_NAMESPACE)  # what the render writes for lesson 05
    direct = manifests.with_peer_namespace(direct, peer)
    generated = renders(target, DEFAULT_NAMESPACE)
    assert [o for o in direct if o["kind"] == "Secret"] == []
    secrets = sorted(o["metadata"]["name"] for o in generated if o["kind"] == "Secret")
    assert secrets == sorted(GENERATED)
    without = [o for o in generated if o["kind"] != "Secret"]
    assert with_parsed_prometheus_config(direct) == with_parsed_prometheus_config(without)


def test_the_prometheus_config_is_regenerated_not_edited() -> None:
    text = (SETTINGS.manifests / manifests.PROMETHEUS_CONFIG).read_text()
    config = yaml.safe_load(manifests.prometheus_config(text, LEARNER))
    original = yaml.safe_load(text)
    sds = [sd for job in config["scrape_configs"] for sd in job.get("kubernetes_sd_configs", [])]
    assert sds == [{"role": "pod", "namespaces": {"names": [LEARNER]}}]
    for job, before in zip(config["scrape_configs"], original["scrape_configs"], strict=True):
        assert {k: v for k, v in job.items() if k != "kubernetes_sd_configs"} == {
            k: v for k, v in before.items() if k != "kubernetes_sd_configs"
        }


@pytest.mark.parametrize("name", ["Learner-07", "learner_07", "-x", "x" * 59])
def test_invalid_namespaces_are_refused_before_rendering(name: str) -> None:
    with pytest.raises(LabError, match="is not a valid namespace name"):
        manifests.render("cluster", SETTINGS, name)
    cli = [sys.executable, "-m", "lab", "render", "--target", "cluster", f"--namespace={name}"]
    proc = subprocess.run(cli, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert "is not a valid namespace name" in proc.stderr
    assert proc.stdout == ""


def test_a_literal_namespace_the_overlay_does_not_reach_is_caught(tmp_path: Path) -> None:
    """A DNS name written with the namespace (postgres.<ns>.svc) in a generator literal: the
    namespace transformer cannot see inside it, and the render refuses to pass it on."""
    shutil.copytree(SETTINGS.manifests, tmp_path / "manifests")
    base = tmp_path / "manifests" / "base" / "kustomization.yaml"
    spec = yaml.safe_load(base.read_text())
    spec["configMapGenerator"][0]["literals"].append(
        f"DATABASE_HOST=postgres.{DEFAULT_NAMESPACE}.svc"
    )
    base.write_text(yaml.safe_dump(spec))
    settings = replace(SETTINGS, repo_root=tmp_path)
    with pytest.raises(manifests.StaleNamespaceError, match=r"data\.DATABASE_HOST"):
        manifests.render("cluster", settings, LEARNER)
    assert manifests.render("cluster", settings, DEFAULT_NAMESPACE)  # the default still renders


def test_render_prints_what_up_applies_with_the_image() -> None:
    ref = "registry.example/team/ironclad-backend:7"
    cli = [sys.executable, "-m", "lab", "render", "--target", "cluster", "--namespace", LEARNER]
    proc = subprocess.run([*cli, "--image", ref], capture_output=True, text=True, check=True)
    objects = manifests.parse(proc.stdout)
    expected = manifests.render("cluster", SETTINGS, LEARNER, ref)
    assert without_secret_values(objects) == without_secret_values(expected)  # generated each
    images = {c["image"] for pod in pod_templates.pods(objects) for c in pod.spec["containers"]}
    assert ref in images
    assert SETTINGS.built_image not in images
