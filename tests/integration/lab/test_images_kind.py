"""The images archive and the registry mirror on a real kind cluster (marker `kind`; skipped
where Docker cannot run, so NOT run where it was written: written for the workflow's
kind-tests job).

One throwaway single-node cluster, created from cluster.yaml through `kind_cluster_config` with
a registry mirror, checks what no offline test can: the node mounts the mirror's hosts.toml
where containerd reads it, `load_into_kind()` puts the archive's pod images into the node, and a
pod with `imagePullPolicy: IfNotPresent` uses the loaded copy instead of pulling. The image is a
stand-in (one small file imported into Docker): the pod cannot start a process, but the
kubelet's "already present on machine" event comes before that.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.image_archive import load_archive, save
from lab.images import Image
from lab.settings import Settings
from lab.targets.kind import kind_binary
from lab.targets.kind_nodes import (
    kind_cluster_config,
    load_into_kind,
    parse_mirrors,
    write_mirror_files,
)
from lab.waits import poll

pytestmark = [pytest.mark.kind, pytest.mark.slow]  # skipped without Docker (tests/conftest.py)
MIRROR = "http://ironclad-mirror.invalid:5000"  # never reached: nothing here is pulled


def run(*argv: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr.decode()}"
    return result.stdout.decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(kind binary, cluster name, certs.d directory) of a one-node cluster with a mirror."""
    settings = Settings.from_env()
    kind = kind_binary(settings)
    name = f"ironclad-images-{uuid.uuid4().hex[:6]}"
    work = tmp_path_factory.mktemp("kind-images")
    certs = write_mirror_files(work / "certs.d", parse_mirrors(MIRROR))
    config = yaml.safe_load(
        kind_cluster_config(settings.kind_config.read_text(), parse_mirrors(MIRROR), certs)
    )
    config["name"] = name
    config["nodes"] = config["nodes"][:1]  # the control-plane alone: enough, and faster
    (work / "cluster.yaml").write_text(yaml.safe_dump(config))
    try:
        run(kind, "create", "cluster", "--config", str(work / "cluster.yaml"), "--wait", "180s")
        yield kind, name, certs
    finally:
        subprocess.run([kind, "delete", "cluster", "--name", name], check=False)


@pytest.fixture
def stand_in() -> Iterator[str]:
    content = b"stand-in image for the kind load test; not a real image\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("stand-in.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    ref = f"ironclad-lab-test/stand-in:{uuid.uuid4().hex[:8]}"
    run("docker", "import", "-", ref, stdin=buffer.getvalue())
    try:
        yield ref
    finally:
        subprocess.run(["docker", "image", "rm", "--force", ref], check=False)


def test_the_node_mounts_the_mirror_config(cluster: tuple[str, str, Path]) -> None:
    _, name, certs = cluster
    inside = run(
        "docker",
        "exec",
        f"{name}-control-plane",
        "cat",
        "/etc/containerd/certs.d/docker.io/hosts.toml",
    )
    assert inside == (certs / "docker.io" / "hosts.toml").read_text()


def test_a_loaded_image_is_used_without_a_pull(
    cluster: tuple[str, str, Path], stand_in: str, tmp_path: Path
) -> None:
    kind, name, _ = cluster
    saved = save(tmp_path / "images.tar", [Image(stand_in, "tag", "stand-in", ())])
    loaded = load_archive(saved.archive)
    assert load_into_kind(loaded.images, name, kind) == (stand_in,)
    listed = json.loads(
        run("docker", "exec", f"{name}-control-plane", "crictl", "images", "-o", "json")
    )
    assert f"docker.io/{stand_in}" in {tag for i in listed["images"] for tag in i["repoTags"]}

    context = f"kind-{name}"
    run(
        "kubectl",
        "--context",
        context,
        "run",
        "stand-in",
        f"--image={stand_in}",
        "--image-pull-policy=IfNotPresent",
        "--restart=Never",
        "--command",
        "--",
        "/nothing",
    )

    def events() -> str | None:
        text = run(
            "kubectl",
            "--context",
            context,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=stand-in",
            "-o",
            "json",
        )
        reasons = ("Pulled", "Pulling", "Failed")  # present, or the kubelet tries a pull
        items = json.loads(text)["items"]
        seen = [f"{e['reason']}: {e['message']}" for e in items if e["reason"] in reasons]
        return "\n".join(seen) or None

    seen = poll(events, what="the stand-in pod's image events", timeout=120, progress=False)
    assert seen.startswith("Pulled: "), seen
    assert "already present on machine" in seen.splitlines()[0], seen
