"""Every image the kind path runs, pinned: the inventory.

`inventory()` derives the list from its sources — the node images of manifests/kind/cluster.yaml,
the `FROM` of backend/Dockerfile, every container of the rendered kind overlay (base and both
components) and the probe pods of `lab.k8s` — never from a hand-kept list; an unpinned image is
an error. The offline archive of these images is `lab.image_archive`; loading them into kind's
nodes and a classroom registry mirror are the kind target's (`lab.targets.kind_nodes`). The
command line is `ironclad-lab images` (lab/commands/images.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from lab.errors import ImageArchiveError
from lab.i18n import N_, _
from lab.manifests import render
from lab.pod_templates import pods
from lab.settings import Settings

Pin = Literal["digest", "tag", "build"]
PROBE_POD_SOURCE = "probe pods (lab/k8s/probes.py NamespaceClient.probe: Settings.built_image)"
# Why each image is pinned the way it is (shown by `images`, per image, in the learner's
# language: `inventory` translates them).
WHY_NODE = N_(
    "the kind {kind} release notes publish it; kind supports a node image only with the release "
    "that built it"
)
WHY_BASE = N_(
    "the Dockerfile pins its multi-architecture index: every build starts from the same bytes"
)
WHY_POD_TAG = N_(
    "not a digest, because `kind load image-archive` names the loaded images by tag and a pod "
    "asking for a digest misses that copy and pulls (kind issues #2171, #4028); the archive's "
    "checksum manifest records each image id instead"
)
WHY_POD_DIGEST = N_("the manifest pins it (a loaded copy must carry the same digest)")
WHY_BUILD = N_(
    "built on each machine from backend/Dockerfile (its base pinned by digest), never pulled; "
    "`lab up` stamps its image id on the Deployment"
)


@dataclass(frozen=True)
class Image:
    """One image of the kind path: its reference as the source writes it, how it is pinned
    and why, and every place that uses it."""

    ref: str
    pin: Pin
    why: str
    used_by: tuple[str, ...]
    in_cluster: bool = True  # pods run it (False: the kind node image, the build's base)

    @property
    def pullable(self) -> bool:
        """False for the backend image: it is built locally, never pulled."""
        return self.pin != "build"

    @property
    def archive_name(self) -> str:
        """The name the archive carries: the reference without its digest (a digest-only one
        gets a tag made of the digest). `docker image save/load` with the classic image store
        drops digests, so loaded images are found by this name."""
        name, _, digest = self.ref.partition("@")
        if digest and ":" not in name.rsplit("/", 1)[-1]:
            return f"{name}:{digest.replace(':', '-')[:19]}"
        return name


def pin_of(ref: str, built: str) -> Pin | None:
    """How `ref` is pinned: "build" (the locally built image), "digest", "tag" (an exact tag,
    not `latest`), or None (unpinned)."""
    if ref == built:
        return "build"
    _, at, digest = ref.partition("@")
    if at:
        return "digest" if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last and not last.endswith(":latest"):
        return "tag"
    return None


def dockerfile_bases(text: str) -> list[str]:
    """The external images a Dockerfile builds FROM, with `ARG` defaults declared before the
    first FROM substituted; references to earlier stages (`FROM build`) are left out."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("ARG", "FROM"):
            continue
        if words[0].upper() == "ARG" and not bases and len(words) > 1 and "=" in words[1]:
            name, value = words[1].split("=", 1)
            args[name] = value.strip("\"'")
        elif words[0].upper() == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            image = re.sub(
                r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), rest[0] if rest else ""
            )
            if len(rest) == 3 and rest[1].upper() == "AS":
                stages.add(rest[2])
            if image not in stages and image.lower() != "scratch" and image not in bases:
                bases.append(image)
    return bases


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def pod_images(objects: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(image, where) for every container of every workload and bare Pod in `objects`."""
    specs = [(pod.ref, pod.namespace, pod.spec) for pod in pods(objects)]
    specs += [
        (f"Pod/{o['metadata']['name']}", o["metadata"].get("namespace", ""), o.get("spec", {}))
        for o in objects
        if o.get("kind") == "Pod"
    ]
    return [
        (c["image"], f"{ref} in {namespace or '(cluster)'}: container {c['name']}")
        for ref, namespace, spec in specs
        for c in _containers(spec)
    ]


def inventory(settings: Settings, objects: Sequence[dict[str, Any]] | None = None) -> list[Image]:
    """Every image of the kind path, derived from its sources (see the module docstring).

    `objects` are the rendered kind overlay (rendered here when not given). Raises
    ImageArchiveError when a source references an unpinned image."""
    repo = settings.repo_root
    found: list[tuple[str, str, str, bool]] = []  # (ref, why, where, in_cluster)
    cluster = yaml.safe_load(settings.kind_config.read_text())
    for i, node in enumerate(cluster.get("nodes", [])):
        where = f"{settings.kind_config.relative_to(repo)} nodes[{i}] ({node.get('role')})"
        why = _(WHY_NODE).format(kind=settings.kind_version)
        found.append((node["image"], why, where, False))
    for base in dockerfile_bases(settings.dockerfile.read_text()):
        found.append((base, _(WHY_BASE), f"{settings.dockerfile.relative_to(repo)} FROM", False))
    rendered = render("kind", settings) if objects is None else objects
    pod_why = {"build": _(WHY_BUILD), "digest": _(WHY_POD_DIGEST), "tag": _(WHY_POD_TAG)}
    for ref, where in pod_images(rendered):
        why = pod_why[pin_of(ref, settings.built_image) or "tag"]
        found.append((ref, why, f"{settings.kind_overlay.relative_to(repo)}: {where}", True))
    found.append((settings.built_image, _(WHY_BUILD), PROBE_POD_SOURCE, True))

    merged: dict[str, Image] = {}
    for ref, why, where, in_cluster in found:
        known = merged.get(ref)
        merged[ref] = Image(
            ref,
            pin_of(ref, settings.built_image) or "tag",  # unpinned ones are refused below
            known.why if known else why,
            (*known.used_by, where) if known else (where,),
            in_cluster or (known is not None and known.in_cluster),
        )
    unpinned = [ref for ref in merged if pin_of(ref, settings.built_image) is None]
    if unpinned:
        raise ImageArchiveError(
            _("Unpinned images on the kind path: {images}.").format(images=", ".join(unpinned)),
            _("Pin each by an exact version tag (not latest) or a digest where it is referenced."),
        )
    return list(merged.values())
