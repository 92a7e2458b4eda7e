"""lab.images without Docker: pins, the Dockerfile's bases, command lines, the checksum check,
the registry-mirror kind config and the CLI. The archive round trip on a real engine is in
tests/integration/lab/test_images_archive.py; the inventory of the real manifests in
tests/manifests/test_images.py."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from lab.commands.images import register
from lab.errors import ImageArchiveError, LabError, ToolMissingError
from lab.image_archive import (
    ArchivedImage,
    LoadResult,
    load_archive,
    manifest_path,
    save_command,
    sha256_of,
    verify,
)
from lab.images import Image, dockerfile_bases, pin_of, pod_images
from lab.settings import Settings
from lab.targets.kind_nodes import (
    CERTS_D,
    CONFIG_PATH_PATCH,
    kind_cluster_config,
    kind_load_command,
    mirror_files,
    parse_mirrors,
    write_mirror_files,
)

REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "pin"),
    [
        ("ironclad-backend:lab", "build"),
        (f"kindest/node:v1.37.0@{DIGEST}", "digest"),
        (f"python@{DIGEST}", "digest"),
        ("postgres:17.6", "tag"),
        ("localhost:5000/team/app:1.2", "tag"),
        ("postgres", None),
        ("postgres:latest", None),
        ("localhost:5000/team/app", None),  # the port is not a tag
        ("python@sha256:abc", None),  # not a whole digest
    ],
)
def test_pin_of(ref: str, pin: str | None) -> None:
    assert pin_of(ref, built="ironclad-backend:lab") == pin


def test_dockerfile_bases_substitute_args_and_skip_stages_and_scratch() -> None:
    text = (
        f'ARG BASE=python:3.11@{DIGEST}\nARG TOOLS="busybox:1.36"\n'
        "FROM ${BASE} AS build\nRUN true\nFROM --platform=$BUILDPLATFORM $TOOLS AS tools\n"
        "FROM scratch AS empty\nFROM build\nCOPY --from=tools / /\n"
    )
    assert dockerfile_bases(text) == [f"python:3.11@{DIGEST}", "busybox:1.36"]


def test_the_backend_dockerfile_builds_from_one_digest_pinned_base() -> None:
    (base,) = dockerfile_bases((REPO / "backend" / "Dockerfile").read_text())
    assert pin_of(base, built="ironclad-backend:lab") == "digest"


def test_pod_images_cover_init_containers_and_bare_pods() -> None:
    objects = [
        {
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                        "containers": [{"name": "db", "image": "postgres:17.6"}],
                    }
                }
            },
        },
        {
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]},
        },
        {"kind": "ConfigMap", "metadata": {"name": "image"}, "data": {"image": "not:one"}},
    ]
    assert pod_images(objects) == [
        ("busybox:1.36", "StatefulSet/db in ns: container init"),
        ("postgres:17.6", "StatefulSet/db in ns: container db"),
        ("x:1", "Pod/p in (cluster): container c"),
    ]


def test_archive_names_drop_the_digest_only() -> None:
    assert Image(f"kindest/node:v1.37.0@{DIGEST}", "digest", "", ()).archive_name == (
        "kindest/node:v1.37.0"
    )
    assert Image("postgres:17.6", "tag", "", ()).archive_name == "postgres:17.6"
    assert Image(f"python@{DIGEST}", "digest", "", ()).archive_name == "python:sha256-abababababab"
    assert not Image("ironclad-backend:lab", "build", "", ()).pullable


def test_load_result_names_the_loaded_copy_of_a_pinned_ref() -> None:
    node = ArchivedImage(f"kindest/node:v1.37.0@{DIGEST}", "kindest/node:v1.37.0", DIGEST)
    result = LoadResult(Path("a.tar"), "0" * 64, (node,), None)
    assert result.local_name(node.ref) == "kindest/node:v1.37.0"
    assert result.local_name("postgres:17.6") == "postgres:17.6"  # not in the archive


def test_command_lines() -> None:
    assert kind_load_command("/opt/kind", Path("/m/images.tar"), "ironclad") == [
        "/opt/kind",
        "load",
        "image-archive",
        "/m/images.tar",
        "--name",
        "ironclad",
    ]
    assert save_command(["a:1", "b:2"], Path("o.tar"), None) == [
        "docker",
        "image",
        "save",
        "-o",
        "o.tar",
        "a:1",
        "b:2",
    ]
    assert save_command(["a:1"], Path("o.tar"), "linux/arm64")[3:5] == ["--platform", "linux/arm64"]


def write_archive(tmp_path: Path, content: bytes, sha256: str | None = None) -> Path:
    archive = tmp_path / "images.tar"
    archive.write_bytes(content)
    entry = {"ref": "postgres:17.6", "name": "postgres:17.6", "id": DIGEST}
    manifest = {"format": 1, "sha256": sha256 or sha256_of(archive), "images": [entry]}
    manifest_path(archive).write_text(json.dumps(manifest))
    return archive


def test_verify_accepts_a_matching_archive(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, b"archive")
    assert manifest_path(archive).name == "images.tar.manifest.json"
    digest, images = verify(archive)
    assert digest == sha256_of(archive)
    assert images == (ArchivedImage("postgres:17.6", "postgres:17.6", DIGEST),)


def test_verify_refuses_a_mismatch_saying_what_to_do(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, b"archive", sha256="0" * 64)
    with pytest.raises(ImageArchiveError, match="incomplete or damaged") as refused:
        verify(archive)
    assert "images save --out" in refused.value.next_step


def test_verify_refuses_a_missing_manifest(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, b"archive")
    manifest_path(archive).unlink()
    with pytest.raises(ImageArchiveError, match="checksum manifest"):
        verify(archive)


@pytest.mark.parametrize("fifo", ["manifest", "archive"])
def test_images_load_refuses_a_fifo_at_once_instead_of_blocking(tmp_path: Path, fifo: str) -> None:
    """Issue 20 item 10: a real FIFO (nobody ever writes to it) as the checksum manifest, or as
    the archive, used to block `images load` forever in its read; it is refused, naming it,
    before anything is loaded (Docker is never called: PATH holds no docker here)."""
    archive = write_archive(tmp_path, b"archive")
    path = manifest_path(archive) if fifo == "manifest" else archive
    path.unlink()
    os.mkfifo(path)
    load = [sys.executable, "-m", "lab", "images", "load", "--archive", str(archive)]
    env = {**os.environ, "PATH": str(tmp_path)}  # were it read, no docker would be found
    done = subprocess.run(load, capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert done.returncode == 1, done.stderr
    assert f"{path} is a FIFO: it is not read. Nothing was loaded." in done.stderr
    assert "images save --out FILE" in done.stderr


def test_verify_refuses_a_directory_as_the_archive(tmp_path: Path) -> None:
    archive = write_archive(tmp_path, b"archive")
    archive.unlink()
    archive.mkdir()
    with pytest.raises(ImageArchiveError, match="is not a regular file: it is not read"):
        verify(archive)


def test_parse_mirrors() -> None:
    assert parse_mirrors("http://10.0.0.5:5000/") == {"docker.io": "http://10.0.0.5:5000"}
    assert parse_mirrors("docker.io=http://m:5000, registry.k8s.io=https://m:5001") == {
        "docker.io": "http://m:5000",
        "registry.k8s.io": "https://m:5001",
    }
    for bad in ("10.0.0.5:5000", "docker.io=", "=http://m"):
        with pytest.raises(LabError, match="LAB_REGISTRY_MIRROR"):
            parse_mirrors(bad)


def test_settings_read_the_mirror() -> None:
    assert Settings.from_env({}).registry_mirror is None
    env = {"LAB_REGISTRY_MIRROR": "http://10.0.0.5:5000"}
    assert Settings.from_env(env).registry_mirror == "http://10.0.0.5:5000"


def test_mirror_files_are_containerd_hosts_toml() -> None:
    files = mirror_files({"docker.io": "http://m:5000", "registry.k8s.io": "http://m:5001"})
    docker_io = tomllib.loads(files["docker.io/hosts.toml"])
    assert docker_io == {
        "server": "https://registry-1.docker.io",
        "host": {"http://m:5000": {"capabilities": ["pull", "resolve"]}},
    }
    assert tomllib.loads(files["registry.k8s.io/hosts.toml"])["server"] == "https://registry.k8s.io"


def test_write_mirror_files_makes_the_certs_d_tree(tmp_path: Path) -> None:
    mirrors = {"docker.io": "http://m:5000"}
    certs = write_mirror_files(tmp_path / "certs.d", mirrors)
    assert sorted(str(p.relative_to(certs)) for p in certs.rglob("*.toml")) == [
        "docker.io/hosts.toml"
    ]
    assert (certs / "docker.io" / "hosts.toml").read_text() == mirror_files(mirrors)[
        "docker.io/hosts.toml"
    ]


def test_kind_config_with_a_mirror_patches_containerd_and_mounts_certs_d(tmp_path: Path) -> None:
    source = (REPO / "manifests" / "kind" / "cluster.yaml").read_text()
    produced = yaml.safe_load(
        kind_cluster_config(source, parse_mirrors("http://m:5000"), tmp_path / "certs.d")
    )
    original = yaml.safe_load(source)
    (patch,) = produced["containerdConfigPatches"]
    assert patch == CONFIG_PATH_PATCH
    assert tomllib.loads(patch) == {
        "plugins": {"io.containerd.grpc.v1.cri": {"registry": {"config_path": CERTS_D}}}
    }
    assert len(produced["nodes"]) == len(original["nodes"]) == 3
    for node, before in zip(produced["nodes"], original["nodes"], strict=True):
        assert node["image"] == before["image"]
        assert node["extraMounts"] == [
            {"hostPath": str(tmp_path / "certs.d"), "containerPath": CERTS_D, "readOnly": True}
        ]
    del produced["containerdConfigPatches"]
    for node in produced["nodes"]:
        del node["extraMounts"]
    assert produced == original  # nothing else changed
    assert (REPO / "manifests" / "kind" / "cluster.yaml").read_text() == source


def test_kind_config_without_a_mirror_is_cluster_yaml_and_can_swap_the_node_image() -> None:
    source = (REPO / "manifests" / "kind" / "cluster.yaml").read_text()
    assert yaml.safe_load(kind_cluster_config(source)) == yaml.safe_load(source)
    swapped = yaml.safe_load(kind_cluster_config(source, node_image="kindest/node:v1.37.0"))
    assert {node["image"] for node in swapped["nodes"]} == {"kindest/node:v1.37.0"}
    with pytest.raises(ValueError, match="certs_dir"):
        kind_cluster_config(source, {"docker.io": "http://m:5000"})


def test_cli_registers_images_with_save_and_load() -> None:
    cli = argparse.ArgumentParser(prog="ironclad-lab")
    register(cli.add_subparsers(dest="command", required=True))
    listing = cli.parse_args(["images", "--json"])
    assert (listing.images_action, listing.output) == (None, "json")
    saving = cli.parse_args(["images", "save", "--out", "i.tar"])
    assert (saving.images_action, saving.out) == ("save", Path("i.tar"))
    loading = cli.parse_args(["images", "load", "--archive", "i.tar", "--cluster", "ironclad"])
    assert (loading.archive, loading.cluster) == (Path("i.tar"), "ironclad")
    assert listing.handler is saving.handler is loading.handler
    with pytest.raises(SystemExit):
        cli.parse_args(["images", "save"])  # --out is required


def test_cli_load_refuses_a_damaged_archive(tmp_path: Path) -> None:
    cli = argparse.ArgumentParser(prog="ironclad-lab")
    register(cli.add_subparsers(dest="command", required=True))
    archive = write_archive(tmp_path, b"archive", sha256="0" * 64)
    args = cli.parse_args(["images", "load", "--archive", str(archive)])
    with pytest.raises(ImageArchiveError, match="Nothing was loaded"):
        args.handler(args, Settings(repo_root=REPO))


def test_a_missing_program_is_named_with_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no kind
    archive = write_archive(tmp_path, b"archive")
    with pytest.raises(ToolMissingError, match="docker not found") as missing:
        load_archive(archive)
    assert "docs.docker.com" in missing.value.next_step
