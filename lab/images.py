"""Every image the kind path runs, pinned, and one offline archive of them.

`inventory()` derives the list from its sources — the node images of manifests/kind/cluster.yaml,
the `FROM` of backend/Dockerfile, every container of the rendered kind overlay (base and both
components) and the probe pods of `lab.k8s` — never from a hand-kept list. `save()` pulls what is
missing, writes one `docker image save` archive and a checksum manifest next to it; `load()`
verifies the manifest, then loads the archive into the local Docker engine and, given a cluster
name, the images pods run into the kind cluster (`load_into_kind`). `kind_cluster_config()` is
the classroom alternative: cluster.yaml with a pull-through registry mirror (LAB_REGISTRY_MIRROR).
The command line is `ironclad-lab images` (lab/commands/images.py).

Over 400 lines on purpose: the inventory, the archive with its checksum manifest and the
kind-side loading share the `Image` records and one job, the kind path's images offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any, Literal

import yaml

from lab.errors import ImageArchiveError, LabError, ToolMissingError
from lab.manifests import pods, render
from lab.settings import Settings

log = logging.getLogger(__name__)

Pin = Literal["digest", "tag", "build"]
MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"
PROBE_POD_SOURCE = "probe pods (lab/k8s/probes.py NamespaceClient.probe: Settings.image)"
# Why each image is pinned the way it is (shown by `images`, per image).
WHY_NODE = (
    "the kind {kind} release notes publish it; kind supports a node image only with the release "
    "that built it"
)
WHY_BASE = (
    "the Dockerfile pins its multi-architecture index: every build starts from the same bytes"
)
WHY_POD_TAG = (
    "not a digest, because `kind load image-archive` names the loaded images by tag and a pod "
    "asking for a digest misses that copy and pulls (kind issues #2171, #4028); the archive's "
    "checksum manifest records each image id instead"
)
WHY_POD_DIGEST = "the manifest pins it (a loaded copy must carry the same digest)"
WHY_BUILD = (
    "built on each machine from backend/Dockerfile (its base pinned by digest), never pulled; "
    "`lab up` stamps its image id on the Deployment"
)
# containerd reads per-registry hosts.toml files from here (kind node images >= v0.27 already
# point config_path at it; the patch makes it explicit for older ones).
CERTS_D = "/etc/containerd/certs.d"
CONFIG_PATH_PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_D}"\n'
INSTALL = {
    "docker": "https://docs.docker.com/engine/install/ (docs/install.md: the kind target)",
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
}
UPSTREAM = {"docker.io": "https://registry-1.docker.io"}  # other registries serve on their name
# The backend image's label naming the backend/ it was built from (`backend_source`): an archived
# backend image is used as is only where the checkout's backend/ is the same.
SOURCE_LABEL = "org.ironclad-lab.backend-source"
LABEL_FORMAT = "{{index .Config.Labels " + f'"{SOURCE_LABEL}"' + "}}"  # docker inspect --format


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


@dataclass(frozen=True)
class ArchivedImage:
    """An image in an archive: its pinned reference, the name it is saved under, its id, and
    whether pods run it (only those go into the kind nodes)."""

    ref: str
    name: str
    id: str
    in_cluster: bool = True


@dataclass(frozen=True)
class SaveResult:
    """What `save` wrote, which images it had to pull, and which built ones were missing."""

    archive: Path
    manifest: Path
    sha256: str
    images: tuple[ArchivedImage, ...]
    pulled: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # built images not present locally (not built yet)


@dataclass(frozen=True)
class LoadResult:
    """What `load` verified and loaded, with each image's id as the engine now reports it."""

    archive: Path
    sha256: str
    images: tuple[ArchivedImage, ...]
    cluster: str | None  # the kind cluster it was loaded into, if any

    def local_name(self, ref: str) -> str:
        """The name under which the loaded copy of the pinned `ref` is found; use it instead of
        `ref` (`docker build --build-arg BASE=...`, the kind node image): a loaded copy may
        have lost its digest."""
        return next((i.name for i in self.images if i.ref == ref), ref)


# --- the inventory ----------------------------------------------------------------------------


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
        found.append((node["image"], WHY_NODE.format(kind=settings.kind_version), where, False))
    for base in dockerfile_bases(settings.dockerfile.read_text()):
        found.append((base, WHY_BASE, f"{settings.dockerfile.relative_to(repo)} FROM", False))
    rendered = render("kind", settings) if objects is None else objects
    pod_why = {"build": WHY_BUILD, "digest": WHY_POD_DIGEST, "tag": WHY_POD_TAG}
    for ref, where in pod_images(rendered):
        why = pod_why[pin_of(ref, settings.image) or "tag"]
        found.append((ref, why, f"{settings.kind_overlay.relative_to(repo)}: {where}", True))
    found.append((settings.image, WHY_BUILD, PROBE_POD_SOURCE, True))

    merged: dict[str, Image] = {}
    for ref, why, where, in_cluster in found:
        known = merged.get(ref)
        merged[ref] = Image(
            ref,
            pin_of(ref, settings.image) or "tag",  # unpinned ones are refused below
            known.why if known else why,
            (*known.used_by, where) if known else (where,),
            in_cluster or (known is not None and known.in_cluster),
        )
    unpinned = [ref for ref in merged if pin_of(ref, settings.image) is None]
    if unpinned:
        raise ImageArchiveError(
            f"Unpinned images on the kind path: {', '.join(unpinned)}.",
            "Pin each by an exact version tag (not latest) or a digest where it is referenced.",
        )
    return list(merged.values())


# --- save and load ----------------------------------------------------------------------------


def _run(argv: Sequence[str]) -> str:
    """Run a docker/kind command; its stdout, or ImageArchiveError with its output."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ToolMissingError(argv[0], INSTALL.get(Path(argv[0]).name, "see README")) from exc
    if result.returncode != 0:
        raise ImageArchiveError(
            f"`{shlex.join(argv)}` failed:\n{(result.stderr or result.stdout).strip()}",
            "Check that Docker runs (`docker info`) and, for a pull, that the registry is "
            "reachable from here; then run the command again.",
        )
    return result.stdout


def _image_id(ref: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def manifest_path(archive: Path) -> Path:
    """Where the checksum manifest of `archive` lives: next to it, `<archive>.manifest.json`."""
    return archive.with_name(archive.name + MANIFEST_SUFFIX)


def open_regular(path: Path, again: str) -> BufferedReader:
    """Open `path` for reading only if it is a regular file, else ImageArchiveError.

    Opened without blocking, then checked on the open descriptor: a FIFO (or a device) at the
    path would otherwise block the read forever, and checking the path before opening it
    could be raced. `again` says what to do instead; OSError (missing, unreadable) passes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise ImageArchiveError(f"{path} is {kind}: it is not read. Nothing was loaded.", again)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def sha256_of(path: Path, again: str = "") -> str:
    with open_regular(path, again) as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def save_command(names: Sequence[str], out: Path, platform: str | None) -> list[str]:
    """`docker image save`; with Docker's containerd image store only this machine's platform
    (`--platform`, Docker >= 28): a multi-platform index names content never pulled, and
    `kind load`'s `ctr import --all-platforms` stops at the first missing digest (kind #3795)."""
    platform_flag = ["--platform", platform] if platform else []
    return ["docker", "image", "save", *platform_flag, "-o", str(out), *names]


def _containerd_store_platform() -> str | None:
    """This engine's os/arch when it uses the containerd image store, else None."""
    status = _run(["docker", "info", "--format", "{{json .DriverStatus}}"])
    if "io.containerd.snapshotter" not in status:
        return None
    return _run(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]).strip()


def backend_source(settings: Settings) -> str:
    """sha256 of what the backend image is built from: every file of backend/ as the build
    context sends it (the code, the Dockerfile, requirements.txt: the lock's backend extra)."""
    backend = settings.dockerfile.parent
    digest = hashlib.sha256()
    for path in sorted(backend.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(
                f"{path.relative_to(backend).as_posix()}\0{path.stat().st_size}\0".encode()
            )
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build_backend(settings: Settings, base: str | None = None) -> str:
    """`docker build` backend/Dockerfile as `settings.image` (FROM `base` when given: a loaded
    archive's copy of the pinned base), labelled with its `backend_source`; its image id."""
    build_arg = ["--build-arg", f"BASE={base}"] if base else []
    label = f"{SOURCE_LABEL}={backend_source(settings)}"
    dockerfile, context = str(settings.dockerfile), str(settings.repo_root)
    _run(
        [
            "docker",
            "build",
            *build_arg,
            "--label",
            label,
            "-f",
            dockerfile,
            "-t",
            settings.image,
            context,
        ]
    )
    built = _image_id(settings.image)
    if built is None:
        raise ImageArchiveError(
            f"{settings.image} is missing right after its build.", "Build again."
        )
    return built


def archived_backend(loaded: LoadResult, settings: Settings) -> str | None:
    """The id of the backend image `loaded` brought when it was built from this checkout's
    backend/ (its label says so): then nothing needs building. None otherwise."""
    entry = next((i for i in loaded.images if i.ref == settings.image), None)
    if entry is None:
        return None
    label = _run(["docker", "image", "inspect", "--format", LABEL_FORMAT, entry.name]).strip()
    if label != backend_source(settings):
        log.warning(
            "the archive's %s was built from another backend/ than this checkout's: building it",
            settings.image,
        )
        return None
    log.info("using the archive's %s (built from this backend/): nothing to build", entry.ref)
    return entry.id


def save(
    out: Path, images: Sequence[Image], build: Callable[[], object] | None = None
) -> SaveResult:
    """Pull each pullable image not yet present, save all into the archive `out` and write its
    checksum manifest next to it. A built image (the backend) goes in as it exists locally,
    built first by `build` when it does not; without `build` it is skipped, with a warning."""
    pulled: list[str] = []
    skipped: list[str] = []
    archived: list[ArchivedImage] = []
    for image in images:
        if _image_id(image.ref) is None and not image.pullable and build is not None:
            log.info("building %s (backend/Dockerfile, from the lock)", image.ref)
            build()
        if _image_id(image.ref) is None:
            if not image.pullable:
                log.warning("skipping %s: not built here yet (`lab up --target kind`)", image.ref)
                skipped.append(image.ref)
                continue
            log.info("pulling %s", image.ref)
            _run(["docker", "pull", image.ref])
            pulled.append(image.ref)
        if image.archive_name != image.ref:
            _run(["docker", "image", "tag", image.ref, image.archive_name])
        image_id = _image_id(image.archive_name)
        if image_id is None:
            raise ImageArchiveError(
                f"{image.archive_name} vanished from the Docker engine.", "Run `images save` again."
            )
        archived.append(ArchivedImage(image.ref, image.archive_name, image_id, image.in_cluster))
    if not archived:
        raise ImageArchiveError("No image to save.", "Check `python -m lab images`.")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    log.info("saving %d images into %s", len(archived), out)
    try:
        _run(save_command([a.name for a in archived], partial, _containerd_store_platform()))
    except ImageArchiveError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    digest = sha256_of(out)
    manifest = manifest_path(out)
    manifest.write_text(
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "archive": out.name,
                "sha256": digest,
                "size": out.stat().st_size,
                "images": [asdict(a) for a in archived],
            },
            indent=2,
        )
        + "\n"
    )
    log.info("wrote %s (sha256 %s) and %s", out, digest, manifest.name)
    return SaveResult(out, manifest, digest, tuple(archived), tuple(pulled), tuple(skipped))


def verify(archive: Path) -> tuple[str, tuple[ArchivedImage, ...]]:
    """Check `archive` against its checksum manifest; (sha256, images) or ImageArchiveError."""
    manifest = manifest_path(archive)
    again = (
        f"Copy both {archive.name} and {manifest.name} again from the machine that saved them, "
        "or save a new archive there: python -m lab images save --out FILE."
    )
    if not archive.exists():
        raise ImageArchiveError(f"No image archive at {archive}.", again)
    try:
        with open_regular(manifest, again) as stream:
            data = json.loads(stream.read())
        expected = str(data["sha256"])
        images = tuple(ArchivedImage(**entry) for entry in data["images"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImageArchiveError(
            f"The checksum manifest {manifest} is missing or unreadable ({exc}).", again
        ) from exc
    log.info("checking the sha256 of %s", archive)
    actual = sha256_of(archive, again)
    if actual != expected:
        raise ImageArchiveError(
            f"{archive} has sha256 {actual}, but {manifest.name} says {expected}: the copy is "
            "incomplete or damaged. Nothing was loaded.",
            again,
        )
    return actual, images


def kind_load_command(kind: str, archive: Path, cluster_name: str) -> list[str]:
    """`kind load image-archive` of the whole archive into every node of the cluster."""
    return [kind, "load", "image-archive", str(archive), "--name", cluster_name]


def load_into_kind(
    images: Sequence[ArchivedImage], cluster_name: str, kind: str = "kind"
) -> tuple[str, ...]:
    """Load the images pods run from the local engine into every node of the kind cluster, as
    one archive (`kind load image-archive`); the node image and the build's base stay out (each
    node would keep a useless copy). Returns the names loaded."""
    names = tuple(i.name for i in images if i.in_cluster)
    if names:
        log.info("loading %s into the kind cluster %s", ", ".join(names), cluster_name)
        with tempfile.TemporaryDirectory(prefix="ironclad-images-") as tmp:
            part = Path(tmp) / "cluster-images.tar"
            _run(save_command(names, part, _containerd_store_platform()))
            _run(kind_load_command(kind, part, cluster_name))
    return names


def load(archive: Path, cluster_name: str | None = None, kind: str = "kind") -> LoadResult:
    """Verify `archive` (nothing is loaded on a mismatch), load it into the local Docker engine
    (the backend build needs its base), check that every image is there, and, given
    `cluster_name`, load the images pods run into that kind cluster (`load_into_kind`)."""
    digest, images = verify(archive)
    log.info("loading %s into the local Docker engine", archive)
    _run(["docker", "image", "load", "--input", str(archive)])
    # Every name must resolve now. Ids are reported as this engine sees them, not compared:
    # the archive's sha256 already proves its content, and with Docker's containerd image
    # store an id is a manifest digest that a single-platform save may change.
    loaded = tuple(
        ArchivedImage(i.ref, i.name, _image_id(i.name) or "", i.in_cluster) for i in images
    )
    missing = [i.name for i in loaded if not i.id]
    if missing:
        raise ImageArchiveError(
            f"After loading {archive}, the engine does not know {', '.join(missing)}.",
            "Save the archive again with `python -m lab images save` and copy both files.",
        )
    if cluster_name is not None:
        load_into_kind(loaded, cluster_name, kind)
    return LoadResult(archive, digest, loaded, cluster_name)


# --- a classroom registry mirror --------------------------------------------------------------


def parse_mirrors(value: str) -> dict[str, str]:
    """LAB_REGISTRY_MIRROR: a URL (a pull-through cache of Docker Hub, where the rate limit
    bites) or comma-separated `registry=URL` pairs, e.g.
    `docker.io=http://10.0.0.5:5000,registry.k8s.io=http://10.0.0.5:5001`."""
    mirrors: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        registry, _, url = item.rpartition("=") if "=" in item else ("docker.io", "", item)
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url) or not registry:
            raise LabError(
                f"LAB_REGISTRY_MIRROR item {item!r} is not a mirror URL.",
                "Set it to a URL such as http://10.0.0.5:5000, or registry=URL pairs "
                "(docker.io=http://10.0.0.5:5000,registry.k8s.io=http://10.0.0.5:5001).",
            )
        mirrors[registry] = url.rstrip("/")
    return mirrors


def hosts_toml(registry: str, mirror: str) -> str:
    """containerd's hosts.toml for `registry`: try the mirror first, then the registry."""
    server = UPSTREAM.get(registry, f"https://{registry}")
    return f'server = "{server}"\n\n[host."{mirror}"]\n  capabilities = ["pull", "resolve"]\n'


def mirror_files(mirrors: Mapping[str, str]) -> dict[str, str]:
    """The files of the certs.d directory the nodes mount: `<registry>/hosts.toml` -> text."""
    return {
        f"{registry}/hosts.toml": hosts_toml(registry, url) for registry, url in mirrors.items()
    }


def write_mirror_files(certs_dir: Path, mirrors: Mapping[str, str]) -> Path:
    """Write `mirror_files(mirrors)` under `certs_dir` (the directory the nodes mount)."""
    for name, text in mirror_files(mirrors).items():
        (certs_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (certs_dir / name).write_text(text)
    return certs_dir


def kind_cluster_config(
    cluster_yaml: str,
    mirrors: Mapping[str, str] | None = None,
    certs_dir: Path | None = None,
    node_image: str | None = None,
) -> str:
    """cluster.yaml's text turned into the config `kind create cluster` gets (cluster.yaml
    itself is never edited).

    With `mirrors` (see `parse_mirrors`): a containerdConfigPatch pointing containerd at
    /etc/containerd/certs.d, and every node mounting `certs_dir` there (`write_mirror_files`
    fills it). With `node_image`: every node runs that image — the archive name of the
    node image after `load()` checked its id, since a loaded copy has lost its digest."""
    config = yaml.safe_load(cluster_yaml)
    if mirrors:
        if certs_dir is None:
            raise ValueError("a registry mirror needs certs_dir, the host directory to mount")
        config.setdefault("containerdConfigPatches", []).append(CONFIG_PATH_PATCH)
        mount = {"hostPath": str(certs_dir), "containerPath": CERTS_D, "readOnly": True}
        for node in config.get("nodes", []):
            node.setdefault("extraMounts", []).append(dict(mount))
    if node_image:
        for node in config.get("nodes", []):
            node["image"] = node_image
    return yaml.safe_dump(config, sort_keys=False)
