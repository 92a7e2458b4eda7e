"""The kind path's image list (`lab.images.inventory`) against everything that names an image:
every YAML file under manifests/, the lab's Python sources and the notebooks' code cells
(walked generically, so a new image anywhere fails here until the inventory derives it), and
the pull policy that makes images loaded from an archive count."""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import manifests, pod_templates
from lab.commands.images import register
from lab.images import Image, inventory, pin_of
from lab.settings import Settings

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

REPO = Path(__file__).resolve().parents[2]
SETTINGS = Settings(repo_root=REPO)
# Python whose image value is not a literal, and where the inventory derives it from: the
# probe pod runs Settings.built_image (`lab.k8s.NamespaceClient.probe`). A new non-literal
# image fails test_every_image_in_python_sources until it is added here and to the inventory.
BUILT = SETTINGS.built_image
# the identity: kind's recorded one; the load-generator Job runs the probe pods' image
DERIVED_IN = {"probe_pod": BUILT, "identity": BUILT, "job_manifest": BUILT}
# Non-literal images that are not the kind path's: the cluster target runs the backend image an
# instructor pushed to a registry (--image / LAB_IMAGE), which no archive holds by design.
# A running lab's recorded identity carries the image it was started with (kind's or the
# registry's) back to `reset`: no new image.
REGISTRY_IMAGES = {
    ("lab/targets/cluster.py", "up"),
    ("lab/identity.py", "from_dict"),
    ("lab/commands/reset.py", "run_reset"),
    ("lab/wrong_order.py", "deploy_too_early"),  # 03's too-early copy of the running backend
}
# A pod only sent as a dry run is never pulled: the client's own flag, or lab.k8s's.
DRY_RUNS = ('dry_run="All"', "dry_run=True")


@pytest.fixture(scope="module")
def images(kind_objects: list[manifests.Obj]) -> dict[str, Image]:
    return {image.ref: image for image in inventory(SETTINGS, kind_objects)}


def yaml_images(value: Any) -> Iterator[str]:
    """Every string under an `image` key, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                yield item
            else:
                yield from yaml_images(item)
    elif isinstance(value, list):
        for item in value:
            yield from yaml_images(item)


def test_the_inventory_names_each_kind_of_image_once(images: dict[str, Image]) -> None:
    repositories = {ref.split("@")[0].rsplit(":", 1)[0]: image for ref, image in images.items()}
    assert set(repositories) == {
        "kindest/node",
        "python",
        "postgres",
        "prom/prometheus",
        "grafana/grafana",
        "registry.k8s.io/metrics-server/metrics-server",
        "ironclad-backend",
    }
    assert repositories["kindest/node"].pin == repositories["python"].pin == "digest"
    backend = repositories["ironclad-backend"]
    assert backend.pin == "build"
    assert not backend.pullable
    assert any("probe" in where for where in backend.used_by)
    outside = {repo for repo, image in repositories.items() if not image.in_cluster}
    assert outside == {"kindest/node", "python"}  # kind gets only what pods run
    assert all(image.why for image in images.values())


def test_every_image_in_a_yaml_file_under_manifests_is_listed_and_pinned(
    images: dict[str, Image],
) -> None:
    found = {
        (ref, str(path.relative_to(REPO)))
        for path in sorted((REPO / "manifests").rglob("*.y*ml"))
        for document in yaml.safe_load_all(path.read_text())
        for ref in yaml_images(document)
    }
    assert len({ref for ref, _ in found}) >= 6  # the walk does find the images
    missing = sorted(f"{ref} ({path})" for ref, path in found if ref not in images)
    assert not missing, f"images the inventory does not derive: {missing}"
    unpinned = sorted(ref for ref, _ in found if pin_of(ref, SETTINGS.built_image) is None)
    assert not unpinned


def python_units() -> Iterator[tuple[str, str]]:
    """(where, source) for every lab module and every notebook code cell (magics dropped)."""
    for path in sorted((REPO / "lab").rglob("*.py")):
        yield str(path.relative_to(REPO)), path.read_text()
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                code = re.sub(r"^\s*[%!].*$", "", source, flags=re.MULTILINE)
                yield f"{path.relative_to(REPO)} cell {i}", code
    for path in sorted((REPO / "notebooks").rglob("*.py")):
        yield str(path.relative_to(REPO)), path.read_text()


def python_images(source: str) -> Iterator[tuple[str | None, str]]:
    """(the literal image or None, the enclosing function's name) for each `image=` keyword
    (but a message's `.format(image=...)`) and `"image":` dict entry in `source`."""
    tree = ast.parse(source)
    owner: dict[ast.AST, str] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            owner.update({node: function.name for node in ast.walk(function)})  # innermost wins
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        # `_("… {image} …").format(image=...)` fills a message, it names no pod's image
        is_format = isinstance(node, ast.Call) and (
            isinstance(node.func, ast.Attribute) and node.func.attr == "format"
        )
        if isinstance(node, ast.Call) and not is_format:
            values = [k.value for k in node.keywords if k.arg == "image"]
        elif isinstance(node, ast.Dict):
            values = [
                v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "image"
            ]
        for value in values:
            literal = value.value if isinstance(value, ast.Constant) else None
            yield (literal if isinstance(literal, str) else None), owner.get(value, "")


def test_every_image_in_python_sources_is_listed_or_never_pulled(
    images: dict[str, Image],
) -> None:
    seen: list[str] = []
    problems = []
    for where, source in python_units():
        for literal, function in python_images(source):
            seen.append(where)
            if literal is None:
                if (where, function) in REGISTRY_IMAGES:
                    continue
                if DERIVED_IN.get(function) not in images:
                    problems.append(f"{where}: non-literal image in {function or 'module'}()")
            elif literal not in images and not any(d in source for d in DRY_RUNS):
                problems.append(f"{where}: {literal!r} (not in the inventory, not a dry run)")
    assert any(w.startswith("lab/") for w in seen)  # the walk does find the probe pod
    assert not problems, problems


def test_every_container_pulls_only_if_not_present(kind_objects: list[manifests.Obj]) -> None:
    """What makes an image loaded from the archive count: the kubelet uses it instead of
    pulling. IfNotPresent is Kubernetes' default for an exact tag or a digest, and Always for
    `latest` or no tag; the manifests say IfNotPresent explicitly, so the rule is visible."""
    containers = [
        (pod.ref, c)
        for pod in pod_templates.pods(kind_objects)
        for c in [*pod.spec.get("initContainers", []), *pod.spec["containers"]]
    ]
    assert len(containers) >= 5
    assert {(ref, c["name"]): c.get("imagePullPolicy") for ref, c in containers} == {
        (ref, c["name"]): "IfNotPresent" for ref, c in containers
    }


def test_images_json_prints_the_inventory(
    images: dict[str, Image], capsys: pytest.CaptureFixture[str]
) -> None:
    cli = argparse.ArgumentParser(prog="ironclad-lab")
    register(cli.add_subparsers(dest="command", required=True))
    args = cli.parse_args(["images", "--json"])
    assert args.handler(args, SETTINGS) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {entry["ref"]: entry["pin"] for entry in printed} == {
        ref: image.pin for ref, image in images.items()
    }
    assert {entry["ref"] for entry in printed if not entry["pullable"]} == {SETTINGS.built_image}
