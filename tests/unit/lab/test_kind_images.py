"""`up --target kind --archive FILE`: the docker/kind command sequence, recorded.

Every docker and kind command goes through a recording runner (lab.targets.kind.run and
lab.image_archive.docker, also as lab.targets.kind_nodes uses it, are replaced by it), so the
order and arguments are checked without Docker; the archive is a real file with a real
checksum manifest (lab.image_archive.verify reads it). Loading
archives into a real engine and cluster is tested in tests/integration/lab/test_images_kind.py.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import cli, image_archive, images
from lab.commands.stack import images_archive
from lab.errors import CommandFailedError, LabError
from lab.settings import Settings, find_repo_root
from lab.stack import StackProcess
from lab.targets import kind, kind_nodes

ROOT = find_repo_root()
SETTINGS = Settings(repo_root=ROOT)
NODE = kind.node_image_of(SETTINGS.kind_config.read_text())
(BASE,) = images.dockerfile_bases(SETTINGS.dockerfile.read_text())
POSTGRES = "postgres:17.6-bookworm"


def archived(ref: str, in_cluster: bool) -> dict[str, Any]:
    name = images.Image(ref, "tag", "", (), in_cluster).archive_name
    return {"ref": ref, "name": name, "id": f"sha256:{ref}", "in_cluster": in_cluster}


def write_archive(directory: Path, with_backend: bool = True) -> Path:
    """An archive file and its checksum manifest, as `images save` writes them."""
    archive = directory / "ironclad-images.tar"
    archive.write_bytes(b"not really a tar: the recording runner never reads it")
    entries = [archived(NODE, False), archived(BASE, False), archived(POSTGRES, True)]
    if with_backend:
        entries.append(archived(SETTINGS.built_image, True))
    manifest = {
        "format": 1,
        "archive": archive.name,
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "images": entries,
    }
    image_archive.manifest_path(archive).write_text(json.dumps(manifest))
    return archive


@dataclass
class RecordingRunner:
    """Answers docker/kind commands as a machine with no cluster yet would; keeps each argv,
    and the config file `kind create cluster` was given (it is a temporary file)."""

    clusters: str = ""  # what `kind get clusters` answers
    mapped: str = ""  # what `docker port ironclad-control-plane 30080/tcp` answers
    backend_label: str = "another backend/"  # the loaded backend image's source label
    calls: list[list[str]] = field(default_factory=list)
    cluster_config: dict[str, Any] = field(default_factory=dict)

    def __call__(self, argv: list[str] | tuple[str, ...]) -> str:
        argv = list(argv)
        self.calls.append(argv)
        if argv[1:3] == ["create", "cluster"]:
            self.cluster_config = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
        if argv[1:] == ["get", "clusters"]:
            return self.clusters
        if argv[1:3] == ["get", "nodes"]:
            return "ironclad-worker\nironclad-control-plane\n"  # kind lists workers first
        if argv[:2] == ["docker", "port"]:
            if argv[2] == "ironclad-control-plane" and self.mapped:
                return self.mapped
            raise CommandFailedError(shlex.join(argv), f"no public port published for {argv[2]}")
        if argv[:3] == ["docker", "image", "inspect"] and argv[4] == image_archive.LABEL_FORMAT:
            return self.backend_label + "\n"
        if argv[:2] == ["docker", "info"]:
            return "[]"  # the classic image store: no --platform on save
        return ""


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RecordingRunner:
    recorder = RecordingRunner()
    monkeypatch.setattr(kind, "run", recorder)
    monkeypatch.setattr(image_archive, "docker", recorder)
    monkeypatch.setattr(kind_nodes, "docker", recorder)
    monkeypatch.setattr(image_archive, "image_id", lambda name: f"sha256:{name}")
    monkeypatch.setattr(kind, "CACHE", tmp_path / "cache")
    return recorder


def shape(calls: list[list[str]]) -> list[list[str]]:
    """The argv with temporary paths replaced by their file name (the repository's own paths
    stay whole, also when the checkout itself lives under the temporary directory)."""

    def temporary(arg: str) -> bool:
        return arg.startswith(tempfile.gettempdir()) and not Path(arg).is_relative_to(ROOT)

    return [[Path(a).name if temporary(a) else a for a in argv] for argv in calls]


def test_with_an_archive_nothing_is_pulled_and_the_order_is_load_create_build_load(
    runner: RecordingRunner, tmp_path: Path
) -> None:
    archive = write_archive(tmp_path)
    target = kind.KindTarget(Settings(repo_root=ROOT, images_archive=archive))
    assert target._prepare("kind") == f"sha256:{SETTINGS.built_image}"
    in_nodes = [archived(POSTGRES, True)["name"], SETTINGS.built_image]
    label = f"{image_archive.SOURCE_LABEL}={image_archive.backend_source(SETTINGS)}"
    assert shape(runner.calls) == [
        ["docker", "image", "load", "--input", archive.name],
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name", "ironclad", "--config", "cluster.yaml",
         "--wait", "180s"],
        ["kind", "get", "nodes", "--name", "ironclad"],
        ["docker", "port", "ironclad-worker", "30080/tcp"],
        ["docker", "port", "ironclad-control-plane", "30080/tcp"],
        ["docker", "image", "inspect", "--format", image_archive.LABEL_FORMAT,
         SETTINGS.built_image],
        ["docker", "build", "--build-arg", f"BASE={archived(BASE, False)['name']}",
         "--label", label, "-f", str(SETTINGS.dockerfile), "-t", SETTINGS.built_image, str(ROOT)],
        ["docker", "info", "--format", "{{json .DriverStatus}}"],
        ["docker", "image", "save", "-o", "cluster-images.tar", *in_nodes],
        ["kind", "load", "image-archive", "cluster-images.tar", "--name", "ironclad"],
    ]  # fmt: skip
    node_images = {node["image"] for node in runner.cluster_config["nodes"]}
    assert node_images == {archived(NODE, False)["name"]}  # the loaded copy, no digest
    assert "@sha256" not in next(iter(node_images))


def test_an_archived_backend_of_the_same_backend_dir_is_used_and_nothing_is_built(
    runner: RecordingRunner, tmp_path: Path
) -> None:
    runner.backend_label = image_archive.backend_source(SETTINGS)
    archive = write_archive(tmp_path)
    target = kind.KindTarget(Settings(repo_root=ROOT, images_archive=archive))
    assert target._prepare("kind") == archived(SETTINGS.built_image, True)["id"]
    assert not [argv for argv in runner.calls if argv[:2] == ["docker", "build"]]
    assert runner.calls[-1][:3] == ["kind", "load", "image-archive"]  # with the other pod images


def test_a_backend_missing_from_the_archive_is_loaded_on_its_own(
    runner: RecordingRunner, tmp_path: Path
) -> None:
    archive = write_archive(tmp_path, with_backend=False)
    kind.KindTarget(Settings(repo_root=ROOT, images_archive=archive))._prepare("kind")
    assert runner.calls[-1] == [
        "kind",
        "load",
        "docker-image",
        SETTINGS.built_image,
        "--name",
        "ironclad",
    ]


def test_without_an_archive_the_cluster_yaml_and_the_dockerfile_are_used_as_they_are(
    runner: RecordingRunner,
) -> None:
    kind.KindTarget(SETTINGS)._prepare("kind")
    assert [argv[:3] for argv in runner.calls] == [
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster"],
        ["kind", "get", "nodes"],  # which host port the cluster maps to the NodePort
        ["docker", "port", "ironclad-worker"],
        ["docker", "port", "ironclad-control-plane"],
        ["docker", "build", "--label"],
        ["kind", "load", "docker-image"],
    ]
    produced = runner.cluster_config
    control_plane = produced["nodes"][0]
    assert control_plane["role"] == "control-plane"
    del control_plane["extraPortMappings"]  # the one addition (next test)
    assert produced == yaml.safe_load(SETTINGS.kind_config.read_text())


def test_a_new_cluster_maps_a_free_loopback_port_to_the_backends_node_port(
    runner: RecordingRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kind fixes extraPortMappings at creation: the host side is a port free at that moment
    (never a constant that could collide), on loopback only, on the control-plane node; the
    port the lab then uses is the one Docker reports, not the one it asked for."""
    monkeypatch.setattr(kind, "free_port", lambda: 41234)
    runner.mapped = "127.0.0.1:41234\n"
    target = kind.KindTarget(SETTINGS)
    target._prepare("kind")
    node_port = kind.backend_node_port(SETTINGS.manifests)
    control_plane, *workers = runner.cluster_config["nodes"]
    assert control_plane["extraPortMappings"] == [
        {"containerPort": node_port, "hostPort": 41234, "listenAddress": "127.0.0.1",
         "protocol": "TCP"}
    ]  # fmt: skip
    assert all("extraPortMappings" not in w for w in workers)
    assert ["docker", "port", "ironclad-control-plane", f"{node_port}/tcp"] in runner.calls
    assert target.service_port == 41234


def test_a_reused_cluster_reads_its_port_back_from_docker_or_warns_without_one(
    runner: RecordingRunner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kind, "stopped_nodes", lambda binary, name: [])
    runner.clusters = "ironclad\n"
    runner.mapped = "127.0.0.1:39999\n[::1]:39999\n"
    target = kind.KindTarget(SETTINGS)
    target._ensure_cluster("kind")
    assert target.service_port == 39999
    runner.mapped = ""  # a cluster an older lab created: nothing mapped
    target._ensure_cluster("kind")
    assert target.service_port is None
    assert "kind delete cluster --name ironclad" in caplog.text


def test_a_registry_mirror_is_mounted_into_every_node(
    runner: RecordingRunner, tmp_path: Path
) -> None:
    settings = Settings(repo_root=ROOT, registry_mirror="http://10.0.0.5:5000")
    kind.KindTarget(settings)._prepare("kind")
    certs = tmp_path / "cache" / "certs.d-ironclad"
    assert (certs / "docker.io" / "hosts.toml").read_text() == kind_nodes.hosts_toml(
        "docker.io", "http://10.0.0.5:5000"
    )
    for node in runner.cluster_config["nodes"]:
        assert {
            "hostPath": str(certs),
            "containerPath": kind_nodes.CERTS_D,
            "readOnly": True,
        } in node["extraMounts"]
    assert runner.cluster_config["containerdConfigPatches"] == [kind_nodes.CONFIG_PATH_PATCH]


def test_an_existing_cluster_is_reused_without_a_config(
    runner: RecordingRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kind, "stopped_nodes", lambda binary, name: [])
    runner.clusters = "ironclad\n"
    kind.KindTarget(Settings(repo_root=ROOT, images_archive=write_archive(tmp_path)))._prepare(
        "kind"
    )
    assert not any(argv[1:3] == ["create", "cluster"] for argv in runner.calls)
    assert runner.calls[-1][:3] == ["kind", "load", "image-archive"]


def test_images_is_refused_off_the_kind_target(tmp_path: Path) -> None:
    for command in ("up", "run"):
        args = cli.parser().parse_args([command, "--target", "local", "--archive", "a.tar"])
        with pytest.raises(LabError, match="--archive applies to the kind target only"):
            images_archive(args, SETTINGS)
        args = cli.parser().parse_args([command, "--target", "kind", "--archive", "a.tar"])
        assert images_archive(args, SETTINGS) == Path("a.tar").resolve()


def test_run_passes_images_to_the_up_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list[str]] = []

    class RecordingProcess:
        def __init__(self, name: str, argv: list[str], *rest: object) -> None:
            started.append(argv)

        def start(self) -> None:
            raise LabError("recorded, not started")

        def stop(self, timeout: float) -> None:
            """Nothing was started."""

    monkeypatch.setattr("lab.stack.ManagedProcess", RecordingProcess)
    archive = tmp_path / "a.tar"
    settings = Settings(repo_root=ROOT, images_archive=archive)
    with pytest.raises(LabError, match="recorded"):
        StackProcess("kind", settings, tmp_path / "up.log").start()
    assert started[0][-2:] == ["--archive", str(archive)]
    assert started[0][3:6] == ["up", "--target", "kind"]
