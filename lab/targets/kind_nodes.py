"""What the kind cluster's nodes get besides the node image: the images pods run, loaded from
the local Docker engine (`load_into_kind`, after `lab.image_archive.load`), for a classroom a
pull-through registry mirror in containerd's config (LAB_REGISTRY_MIRROR), and the host port
mapped to the backend's NodePort (`kind_cluster_config` turns cluster.yaml into what
`kind create cluster` gets).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from lab.errors import LabError
from lab.i18n import _
from lab.image_archive import ArchivedImage, containerd_store_platform, docker, save_command
from lab.net import LOOPBACK

log = logging.getLogger(__name__)

# containerd reads per-registry hosts.toml files from here (kind node images >= v0.27 already
# point config_path at it; the patch makes it explicit for older ones).
CERTS_D = "/etc/containerd/certs.d"
CONFIG_PATH_PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_D}"\n'
UPSTREAM = {"docker.io": "https://registry-1.docker.io"}  # other registries serve on their name


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
            docker(save_command(names, part, containerd_store_platform()))
            docker(kind_load_command(kind, part, cluster_name))
    return names


# --- a classroom registry mirror --------------------------------------------------------------


def parse_mirrors(value: str) -> dict[str, str]:
    """LAB_REGISTRY_MIRROR: a URL (a pull-through cache of Docker Hub, where the rate limit
    bites) or comma-separated `registry=URL` pairs, e.g.
    `docker.io=http://10.0.0.5:5000,registry.k8s.io=http://10.0.0.5:5001`."""
    mirrors: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        registry, _sep, url = item.rpartition("=") if "=" in item else ("docker.io", "", item)
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url) or not registry:
            raise LabError(
                _("LAB_REGISTRY_MIRROR item {item} is not a mirror URL.").format(item=repr(item)),
                _(
                    "Set it to a URL such as http://10.0.0.5:5000, or registry=URL pairs "
                    "(docker.io=http://10.0.0.5:5000,registry.k8s.io=http://10.0.0.5:5001)."
                ),
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
    node_port: tuple[int, int] | None = None,
) -> str:
    """cluster.yaml's text turned into the config `kind create cluster` gets (cluster.yaml
    itself is never edited).

    With `node_port` (nodePort, host port): the control-plane node maps the host port, on
    loopback (this machine only, never its network), to that nodePort (`extraPortMappings`).
    kube-proxy opens a NodePort on every node, so the control-plane (no backend pod) forwards each
    connection to a ready endpoint on a worker: the Service's choice, not the lab's. kind
    fixes the mapping when it creates the cluster (no later change), hence a host port chosen
    free at that moment rather than a constant that could collide on a learner's machine.

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
    if node_port:
        container_port, host_port = node_port
        control_plane = next(n for n in config["nodes"] if n.get("role") == "control-plane")
        control_plane.setdefault("extraPortMappings", []).append(
            {
                "containerPort": container_port,
                "hostPort": host_port,
                "listenAddress": LOOPBACK,
                "protocol": "TCP",
            }
        )
    return yaml.safe_dump(config, sort_keys=False)


def parse_docker_port(text: str) -> int | None:
    """The host port in `docker port NODE PORT/tcp`'s answer ("127.0.0.1:41234", one line per
    address); None when nothing is mapped."""
    for line in text.splitlines():
        host, _, port = line.strip().rpartition(":")
        if host and port.isdigit():
            return int(port)
    return None
