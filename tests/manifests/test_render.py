"""Every kustomization renders; every object validates strictly against the kind node's
Kubernetes version and the one before; the official client's models accept every object."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lab import manifests, slo
from lab.manifests import kustomizations
from lab.model_validation import model_problem
from lab.settings import get_settings

SETTINGS = get_settings()
MANIFESTS = SETTINGS.manifests

KIND_CLUSTER = MANIFESTS / "kind" / "cluster.yaml"
# Parse each schema file once instead of once per object (the package re-reads ~MBs each call).
kubernetes_validate.utils.schema_contents = functools.cache(
    kubernetes_validate.utils.schema_contents
)
NODE_IMAGE = re.compile(r"kindest/node:v(\d+)\.(\d+)\.(\d+)@sha256:[0-9a-f]{64}")


def node_versions() -> list[str]:
    """The kind node's Kubernetes version (major.minor.0) and the minor before it."""
    images = {n["image"] for n in yaml.safe_load(KIND_CLUSTER.read_text())["nodes"]}
    assert len(images) == 1, f"{KIND_CLUSTER}: all nodes must share one image, got {images}"
    match = NODE_IMAGE.fullmatch(images.pop())
    assert match, f"{KIND_CLUSTER}: node image must be kindest/node:vX.Y.Z@sha256:<digest>"
    major, minor = int(match[1]), int(match[2])
    return [f"{major}.{minor}.0", f"{major}.{minor - 1}.0"]


def all_objects() -> list[tuple[str, manifests.Obj]]:
    """(id, object) for every distinct object any kustomization renders."""
    seen: dict[str, tuple[str, manifests.Obj]] = {}
    for directory in kustomizations(MANIFESTS, "Kustomization"):
        for obj in manifests.build(directory):
            kind, ns, name = manifests.ident(obj)
            oid = f"{directory.relative_to(MANIFESTS)}:{kind}/{ns}/{name}"
            seen.setdefault(json.dumps(obj, sort_keys=True), (oid, obj))
    return sorted(seen.values(), key=lambda item: item[0])


OBJECTS = all_objects()


def test_kind_cluster_has_one_control_plane_and_two_workers() -> None:
    roles = sorted(n["role"] for n in yaml.safe_load(KIND_CLUSTER.read_text())["nodes"])
    assert roles == ["control-plane", "worker", "worker"]
    assert node_versions()


def test_node_image_belongs_to_the_kind_release_the_lab_runs() -> None:
    """A node image works only with the kind release that built it (its release notes)."""
    from lab.settings import Settings

    named = re.search(r"kind release: (v\d+\.\d+\.\d+)", KIND_CLUSTER.read_text())
    assert named, f"{KIND_CLUSTER}: say which kind release the node image comes from"
    assert named[1] == Settings.kind_version, (
        f"{KIND_CLUSTER} pins a node image of kind {named[1]}; "
        f"the lab runs kind {Settings.kind_version}"
    )


# Node images listed in the release notes of the kind releases the lab has pinned (copied from
# https://github.com/kubernetes-sigs/kind/releases; add a release here before pinning it).
KIND_RELEASE_IMAGES = {
    "v0.27.0": {
        "kindest/node:v1.32.2@sha256:"
        "f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
    },
    "v0.33.0": {
        "kindest/node:v1.37.0@sha256:"
        "a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "kindest/node:v1.36.4@sha256:"
        "099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "kindest/node:v1.35.8@sha256:"
        "07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "kindest/node:v1.34.11@sha256:"
        "44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
    },
}


def test_node_image_digest_is_one_its_kind_release_published() -> None:
    """The comment naming the release is not enough: the digest must be in its notes."""
    named = re.search(r"kind release: (v\d+\.\d+\.\d+)", KIND_CLUSTER.read_text())
    assert named, f"{KIND_CLUSTER}: say which kind release the node image comes from"
    assert named[1] in KIND_RELEASE_IMAGES, (
        f"add the images of kind {named[1]} (its release notes) to KIND_RELEASE_IMAGES"
    )
    images = {n["image"] for n in yaml.safe_load(KIND_CLUSTER.read_text())["nodes"]}
    assert images <= KIND_RELEASE_IMAGES[named[1]], (
        f"{images} are not images kind {named[1]} published"
    )


@pytest.mark.parametrize(
    "directory",
    kustomizations(MANIFESTS, "Kustomization"),
    ids=lambda d: str(d.relative_to(MANIFESTS)),
)
def test_kustomization_builds(rendered: dict[Path, list[manifests.Obj]], directory: Path) -> None:
    assert rendered[directory], f"{directory} rendered no objects"


def test_every_component_is_used_by_an_overlay() -> None:
    used = {
        (overlay / c).resolve()
        for overlay in kustomizations(MANIFESTS, "Kustomization")
        for c in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("components", [])
    }
    assert set(kustomizations(MANIFESTS, "Component")) <= used


def test_kind_overlay_has_the_contract_names(
    kind_objects: list[manifests.Obj], namespace: str
) -> None:
    names = {manifests.ident(o) for o in kind_objects}
    ns = namespace
    assert {
        ("Namespace", "", ns),
        ("Secret", ns, "postgres-secret"),
        ("Secret", ns, "chaos-secret"),
        ("Deployment", ns, "backend"),
        ("Service", ns, "backend"),
        ("StatefulSet", ns, "postgres"),
        ("Service", ns, "postgres"),
        ("Deployment", ns, "prometheus"),
        ("Deployment", ns, "grafana"),
        ("Deployment", "kube-system", "metrics-server"),
    } <= names
    backend = next(o for o in kind_objects if manifests.ident(o) == ("Deployment", ns, "backend"))
    container = backend["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == (
        "ironclad-backend:lab",
        "IfNotPresent",
    )


def test_the_kind_overlay_loads_the_lab_rules(kind_objects: list[manifests.Obj]) -> None:
    rules = [
        o
        for o in kind_objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus-rules")
    ]
    assert [r["data"] for r in rules] == [
        {slo.RULE_FILE_NAME: slo.LAB.rule_file(SETTINGS.rules_dir).read_text()}
    ]


@pytest.mark.parametrize("version", node_versions())
@pytest.mark.parametrize(("oid", "obj"), OBJECTS, ids=[i for i, _ in OBJECTS])
def test_strict_schema(oid: str, obj: manifests.Obj, version: str) -> None:
    try:
        used = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{oid}: {exc.message}")
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "(root)"
        pytest.fail(f"{oid} (Kubernetes {exc.version}): {path}: {exc.message}")
    assert used == version.rsplit(".", 1)[0], f"{oid}: no schema for {version}, only {used}"


@pytest.mark.parametrize(("oid", "obj"), OBJECTS, ids=[i for i, _ in OBJECTS])
def test_client_model_accepts(oid: str, obj: manifests.Obj) -> None:
    problem = model_problem(obj)
    assert problem is None, f"{oid}: {problem}"


def a_deployment() -> manifests.Obj:
    """A deep copy of the first rendered Deployment, to break."""
    deployment = next(o for _, o in OBJECTS if o["kind"] == "Deployment")
    copy: manifests.Obj = json.loads(json.dumps(deployment))
    return copy


def test_client_model_check_rejects_a_wrong_type() -> None:
    broken = a_deployment()
    broken["spec"]["replicas"] = "three"
    assert "replicas" in (model_problem(broken) or "")


def test_client_model_check_rejects_an_unknown_field() -> None:
    broken = a_deployment()
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert "dropped" in (model_problem(broken) or "")


def test_strict_schema_rejects_an_unknown_field() -> None:
    broken = a_deployment()
    broken["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(broken, node_versions()[0], strict=True)


def schema_problems(objects: list[manifests.Obj], version: str) -> list[str]:
    """test_strict_schema's and test_client_model_accepts' verdicts on a whole render."""
    problems = []
    for obj in objects:
        oid = "/".join(manifests.ident(obj))
        try:
            used = kubernetes_validate.validate(obj, version, strict=True)
            if used != version.rsplit(".", 1)[0]:
                problems.append(f"{oid}: no schema for {version}, only {used}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{oid}: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path) or "(root)"
            problems.append(f"{oid} (Kubernetes {exc.version}): {path}: {exc.message}")
        if problem := model_problem(obj):
            problems.append(f"{oid}: {problem}")
    return problems


@pytest.mark.parametrize("version", node_versions())
@pytest.mark.parametrize("target", ["kind", "cluster"])
def test_every_namespace_render_validates(
    renders: Any, target: str, namespace: str, version: str
) -> None:
    """What `lab up` applies, for the default and a learner's namespace: the same strict
    schemas and client models as every kustomization above."""
    assert schema_problems(renders(target, namespace), version) == []
