"""The offline archive of the kind path's images (`lab.images.inventory`), and the backend
image build it carries.

`save()` pulls what is missing (building the backend), writes one `docker image save` archive
and a checksum manifest next to it; `load_archive()` verifies the manifest, then loads the
archive into the local Docker engine (the kind target then loads what pods run into its
nodes: `lab.targets.kind_nodes`). `build_backend()` builds backend/Dockerfile labelled with the
`backend_source` it was built from, so an archived backend image is reused only where the
checkout's backend/ is the same. Every docker command goes through `docker()`: a failure says
what to check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from io import BufferedReader
from pathlib import Path

from lab.errors import ImageArchiveError, ToolMissingError
from lab.i18n import N_, _
from lab.images import Image
from lab.settings import Settings

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"
INSTALL = {
    "docker": N_("https://docs.docker.com/engine/install/ (docs/install.md: the kind target)"),
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
}
SEE_README = N_("see README")
# The backend image's label naming the backend/ it was built from (`backend_source`): an archived
# backend image is used as is only where the checkout's backend/ is the same.
SOURCE_LABEL = "org.ironclad-lab.backend-source"
LABEL_FORMAT = "{{index .Config.Labels " + f'"{SOURCE_LABEL}"' + "}}"  # docker inspect --format


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
    """What `load_archive` verified and loaded, each image with its id as the engine reports it."""

    archive: Path
    sha256: str
    images: tuple[ArchivedImage, ...]
    cluster: str | None = None  # the kind cluster it was also loaded into, if any

    def local_name(self, ref: str) -> str:
        """The name under which the loaded copy of the pinned `ref` is found; use it instead of
        `ref` (`docker build --build-arg BASE=...`, the kind node image): a loaded copy may
        have lost its digest."""
        return next((i.name for i in self.images if i.ref == ref), ref)


def docker(argv: Sequence[str]) -> str:
    """Run a docker (or kind) command; its stdout, or ImageArchiveError with its output."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        install = INSTALL.get(Path(argv[0]).name, SEE_README)
        raise ToolMissingError(argv[0], _(install)) from exc
    if result.returncode != 0:
        raise ImageArchiveError(
            _("`{command}` failed:\n{output}").format(
                command=shlex.join(argv), output=(result.stderr or result.stdout).strip()
            ),
            _(
                "Check that Docker runs (`docker info`) and, for a pull, that the registry is "
                "reachable from here; then run the command again."
            ),
        )
    return result.stdout


def image_id(ref: str) -> str | None:
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
        problem = (
            _("{path} is a FIFO: it is not read. Nothing was loaded.")
            if stat.S_ISFIFO(mode)
            else _("{path} is not a regular file: it is not read. Nothing was loaded.")
        )
        raise ImageArchiveError(
            problem.format(path=path),
            again,
        )
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


def containerd_store_platform() -> str | None:
    """This engine's os/arch when it uses the containerd image store, else None."""
    status = docker(["docker", "info", "--format", "{{json .DriverStatus}}"])
    if "io.containerd.snapshotter" not in status:
        return None
    return docker(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]).strip()


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
    """`docker build` backend/Dockerfile as `settings.built_image` (FROM `base` when given: a loaded
    archive's copy of the pinned base), labelled with its `backend_source`; its image id."""
    build_arg = ["--build-arg", f"BASE={base}"] if base else []
    label = f"{SOURCE_LABEL}={backend_source(settings)}"
    dockerfile, context = str(settings.dockerfile), str(settings.repo_root)
    docker(
        [
            "docker",
            "build",
            *build_arg,
            "--label",
            label,
            "-f",
            dockerfile,
            "-t",
            settings.built_image,
            context,
        ]
    )
    built = image_id(settings.built_image)
    if built is None:
        raise ImageArchiveError(
            _("{reference} is missing right after its build.").format(
                reference=settings.built_image
            ),
            _("Build again."),
        )
    return built


def archived_backend(loaded: LoadResult, settings: Settings) -> str | None:
    """The id of the backend image `loaded` brought when it was built from this checkout's
    backend/ (its label says so): then nothing needs building. None otherwise."""
    entry = next((i for i in loaded.images if i.ref == settings.built_image), None)
    if entry is None:
        return None
    label = docker(["docker", "image", "inspect", "--format", LABEL_FORMAT, entry.name]).strip()
    if label != backend_source(settings):
        log.warning(
            "the archive's %s was built from another backend/ than this checkout's: building it",
            settings.built_image,
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
        if image_id(image.ref) is None and not image.pullable and build is not None:
            log.info("building %s (backend/Dockerfile, from the lock)", image.ref)
            build()
        if image_id(image.ref) is None:
            if not image.pullable:
                log.warning("skipping %s: not built here yet (`lab up --target kind`)", image.ref)
                skipped.append(image.ref)
                continue
            log.info("pulling %s", image.ref)
            docker(["docker", "pull", image.ref])
            pulled.append(image.ref)
        if image.archive_name != image.ref:
            docker(["docker", "image", "tag", image.ref, image.archive_name])
        archived_id = image_id(image.archive_name)
        if archived_id is None:
            raise ImageArchiveError(
                _("{reference} vanished from the Docker engine.").format(
                    reference=image.archive_name
                ),
                _("Run `images save` again."),
            )
        archived.append(ArchivedImage(image.ref, image.archive_name, archived_id, image.in_cluster))
    if not archived:
        raise ImageArchiveError(_("No image to save."), _("Check `python -m lab images`."))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    log.info("saving %d images into %s", len(archived), out)
    try:
        docker(save_command([a.name for a in archived], partial, containerd_store_platform()))
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
    again = _(
        "Copy both {archive} and {manifest} again from the machine that saved them, or save a "
        "new archive there: python -m lab images save --out FILE."
    ).format(archive=archive.name, manifest=manifest.name)
    if not archive.exists():
        raise ImageArchiveError(_("No image archive at {archive}.").format(archive=archive), again)
    try:
        with open_regular(manifest, again) as stream:
            data = json.loads(stream.read())
        expected = str(data["sha256"])
        images = tuple(ArchivedImage(**entry) for entry in data["images"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImageArchiveError(
            _("The checksum manifest {manifest} is missing or unreadable ({error}).").format(
                manifest=manifest, error=exc
            ),
            again,
        ) from exc
    log.info("checking the sha256 of %s", archive)
    actual = sha256_of(archive, again)
    if actual != expected:
        raise ImageArchiveError(
            _(
                "{archive} has sha256 {actual}, but {manifest} says {expected}: the copy is "
                "incomplete or damaged. Nothing was loaded."
            ).format(archive=archive, actual=actual, manifest=manifest.name, expected=expected),
            again,
        )
    return actual, images


def load_archive(archive: Path) -> LoadResult:
    """Verify `archive` (nothing is loaded on a mismatch), load it into the local Docker engine
    (the backend build needs its base) and check that every image is there. Into a kind
    cluster's nodes: `lab.targets.kind_nodes.load_into_kind(result.images, ...)`."""
    digest, images = verify(archive)
    log.info("loading %s into the local Docker engine", archive)
    docker(["docker", "image", "load", "--input", str(archive)])
    # Every name must resolve now. Ids are reported as this engine sees them, not compared:
    # the archive's sha256 already proves its content, and with Docker's containerd image
    # store an id is a manifest digest that a single-platform save may change.
    loaded = tuple(
        ArchivedImage(i.ref, i.name, image_id(i.name) or "", i.in_cluster) for i in images
    )
    missing = [i.name for i in loaded if not i.id]
    if missing:
        raise ImageArchiveError(
            _("After loading {archive}, the engine does not know {images}.").format(
                archive=archive, images=", ".join(missing)
            ),
            _("Save the archive again with `python -m lab images save` and copy both files."),
        )
    return LoadResult(archive, digest, loaded)
