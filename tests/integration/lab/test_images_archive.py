"""The images archive round trip (`lab.image_archive.save` → `docker rmi` → `load_archive`) on a
real Docker engine.

Nothing can be pulled where these tests were written (no registry), so they use STAND-IN
images: tiny images imported from a one-file tarball (`docker import`), not the lab's real
base, PostgreSQL or Prometheus images. What they verify is the archive mechanics: one archive,
the checksum manifest, ids surviving save/load, a damaged archive refused before anything is
loaded. Not verified here: `docker pull` of the real images (only its failure) and what
`kind load image-archive` does in a cluster (needs kind; a recording stand-in for the kind
binary checks the archive handed to it).

The engine is the one `docker` reaches by default, or LAB_TEST_DOCKER_HOST (CI starts a
private dockerd for these tests: .ci/dockerd).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.errors import ImageArchiveError
from lab.image_archive import archived_backend, build_backend, load_archive, manifest_path, save
from lab.images import Image
from lab.settings import Settings
from lab.targets.kind_nodes import load_into_kind

pytestmark = pytest.mark.xdist_group(__name__)  # module-scoped fixtures: one worker

STAND_IN = "ironclad-lab-test/stand-in"  # repository of the stand-in images


def docker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)


def image_id(ref: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref)
    return result.stdout.decode().strip() if result.returncode == 0 else None


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    """Point `docker` at the test engine for this module; skip where none answers."""
    with pytest.MonkeyPatch.context() as patch:
        if host := os.environ.get("LAB_TEST_DOCKER_HOST"):
            patch.setenv("DOCKER_HOST", host)
        if shutil.which("docker") is None:
            pytest.skip("no docker CLI on PATH, so the images archive cannot be tested")
        if docker("info").returncode != 0:
            pytest.skip("no Docker engine answers (`docker info` failed; CI starts .ci/dockerd)")
        yield


def stand_in(tag: str) -> str:
    """Import a stand-in image (one small text file, no base) and return its reference."""
    content = f"stand-in image {tag} for the archive round trip; not a real base image\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("stand-in.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content.encode()))
    ref = f"{STAND_IN}:{tag}"
    result = docker("import", "-", ref, stdin=buffer.getvalue())
    assert result.returncode == 0, result.stderr.decode()
    return ref


@pytest.fixture
def stand_ins(engine: None) -> Iterator[list[Image]]:
    """Two stand-in images, removed again after the test whatever happened."""
    run = uuid.uuid4().hex[:8]
    refs = [stand_in(f"{name}-{run}") for name in ("base", "pod")]
    try:
        yield [Image(ref, "tag", "stand-in", ("test",)) for ref in refs]
    finally:
        docker("image", "rm", "--force", *refs)


def remove(images: list[Image]) -> None:
    result = docker("image", "rm", *(i.ref for i in images))
    assert result.returncode == 0, result.stderr.decode()
    assert [image_id(i.ref) for i in images] == [None] * len(images)


def test_save_rmi_load_keeps_every_image_id(stand_ins: list[Image], tmp_path: Path) -> None:
    ids = {i.ref: image_id(i.ref) for i in stand_ins}
    saved = save(tmp_path / "images.tar", stand_ins)
    assert saved.pulled == ()  # present locally: nothing to pull
    manifest = json.loads(manifest_path(saved.archive).read_text())
    assert manifest["sha256"] == saved.sha256
    assert {entry["ref"]: entry["id"] for entry in manifest["images"]} == ids

    remove(stand_ins)
    loaded = load_archive(saved.archive)
    assert loaded.cluster is None
    assert {i.ref: image_id(i.ref) for i in stand_ins} == ids
    assert {i.ref: i.id for i in loaded.images} == ids


def test_a_damaged_archive_is_refused_and_nothing_is_loaded(
    stand_ins: list[Image], tmp_path: Path
) -> None:
    saved = save(tmp_path / "images.tar", stand_ins)
    remove(stand_ins)
    with saved.archive.open("r+b") as archive:  # one flipped byte in the middle
        archive.seek(saved.archive.stat().st_size // 2)
        byte = archive.read(1)
        archive.seek(-1, io.SEEK_CUR)
        archive.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ImageArchiveError, match="incomplete or damaged") as refused:
        load_archive(saved.archive)
    assert "Copy both" in refused.value.next_step
    assert [image_id(i.ref) for i in stand_ins] == [None, None]


def test_an_image_not_built_yet_is_skipped_and_the_rest_saved(
    stand_ins: list[Image], tmp_path: Path
) -> None:
    not_built = Image(f"{STAND_IN}:not-built-{uuid.uuid4().hex[:8]}", "build", "stand-in", ())
    saved = save(tmp_path / "images.tar", [*stand_ins, not_built])
    assert saved.skipped == (not_built.ref,)
    assert [i.ref for i in saved.images] == [i.ref for i in stand_ins]


def test_an_unreachable_registry_fails_the_pull_with_the_command(
    engine: None, tmp_path: Path
) -> None:
    """The pull path, as far as it can run here: a registry that refuses connections."""
    missing = Image("127.0.0.1:9/ironclad-lab-test/absent:1", "tag", "stand-in", ())
    with pytest.raises(ImageArchiveError, match=re.escape("docker pull 127.0.0.1:9/")):
        save(tmp_path / "images.tar", [missing])
    assert not (tmp_path / "images.tar").exists()


def test_kind_gets_one_archive_of_the_in_cluster_images_only(
    stand_ins: list[Image], tmp_path: Path
) -> None:
    """`kind` here is a RECORDING STAND-IN (a shell script keeping its arguments and the archive
    it was given): what real kind does with the archive needs a kind cluster."""
    base, pod = stand_ins
    images = [Image(base.ref, "tag", "", (), in_cluster=False), pod]
    kind = tmp_path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncp "$3" {tmp_path}/given.tar\n')
    kind.chmod(0o755)
    saved = save(tmp_path / "images.tar", images)
    loaded = load_archive(saved.archive)
    assert load_into_kind(loaded.images, "ironclad", str(kind)) == (pod.ref,)
    args = (tmp_path / "args").read_text().split()
    assert args[:2] == ["load", "image-archive"]
    assert args[3:] == ["--name", "ironclad"]
    with tarfile.open(tmp_path / "given.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [tag for entry in manifest for tag in entry["RepoTags"]] == [pod.ref]


# A STAND-IN for backend/Dockerfile: the real one starts FROM a pinned python image that cannot
# be pulled here. What is real: `save` building the missing backend image through the same
# `build_backend` the kind target uses, its source label, and the decision after `load`.
STAND_IN_DOCKERFILE = (
    "# stand-in backend/Dockerfile (no base image can be pulled here)\n"
    "FROM scratch\n"
    "COPY backend/app.txt /app.txt\n"
)


def test_save_builds_the_backend_and_only_the_same_source_skips_the_build(
    engine: None, tmp_path: Path
) -> None:
    backend = tmp_path / "checkout" / "backend"
    backend.mkdir(parents=True)
    (backend / "Dockerfile").write_text(STAND_IN_DOCKERFILE)
    (backend / "app.txt").write_text("version 1\n")
    settings = Settings(
        repo_root=backend.parent, built_image=f"{STAND_IN}:backend-{uuid.uuid4().hex[:8]}"
    )
    built = Image(settings.built_image, "build", "stand-in", ("test",))
    try:
        assert image_id(settings.built_image) is None
        saved = save(tmp_path / "images.tar", [built], build=lambda: build_backend(settings))
        assert (saved.skipped, [a.ref for a in saved.images]) == ((), [settings.built_image])
        built_id = image_id(settings.built_image)
        remove([built])

        loaded = load_archive(saved.archive)
        assert archived_backend(loaded, settings) == built_id  # kind builds nothing
        (backend / "app.txt").write_text("version 2\n")  # the learner's backend/ differs
        assert archived_backend(loaded, settings) is None  # so kind builds it
    finally:
        docker("image", "rm", "--force", settings.built_image)


def test_save_without_a_build_skips_a_missing_backend(engine: None, tmp_path: Path) -> None:
    missing = Image(f"{STAND_IN}:never-built-{uuid.uuid4().hex[:8]}", "build", "stand-in", ("t",))
    with pytest.raises(ImageArchiveError, match="No image to save"):
        save(tmp_path / "images.tar", [missing])
