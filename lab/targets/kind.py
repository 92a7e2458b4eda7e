"""The `kind` target: a kind cluster with the image loaded, the overlay applied, ports forwarded,
and the backend's NodePort Service reachable from this machine (`Endpoints.service`)."""

from __future__ import annotations

import hashlib
import logging
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import requests
import yaml

from lab.contract import BACKEND
from lab.errors import CommandFailedError, LabError, TargetUnavailableError
from lab.i18n import N_, _
from lab.identity import Identity, resolve
from lab.image_archive import LoadResult, archived_backend, build_backend, load_archive
from lab.images import dockerfile_bases
from lab.k8s import NamespaceClient
from lab.lessons import part_of
from lab.manifests import render
from lab.net import LOOPBACK, free_port, http_ok
from lab.settings import Settings
from lab.targets.base import Endpoints, docker_info, docker_problem
from lab.targets.kind_nodes import (
    kind_cluster_config,
    load_into_kind,
    parse_docker_port,
    parse_mirrors,
    write_mirror_files,
)
from lab.targets.kube import BACKEND_PODS, KubeStack, stack_credentials, stop_forwards
from lab.waits import poll

log = logging.getLogger(__name__)

MIN_KIND = (0, 24)
CACHE = Path.home() / ".cache" / "ironclad-lab"
IMAGE_ID_ANNOTATION = "lab.ironclad/image-id"
METRICS_API = "v1beta1.metrics.k8s.io"
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# The backend's NodePort Service (kind only: components/node-port); its nodePort is mapped to a
# host port when the cluster is created.
NODE_PORT_SERVICE = Path("components") / "node-port" / "backend-node-port.yaml"


CGROUP_V1_FIX = N_(
    "Boot the host with cgroup v2 (kernel parameter systemd.unified_cgroup_hierarchy=1; the "
    "default of current Linux distributions and of Docker Desktop), or use --target local."
)


def cgroup_problem() -> str | None:
    """What is wrong when Docker runs on cgroup v1, else None: the kind node image's kubelet
    (Kubernetes 1.37; cgroup v1 support ended in 1.35) refuses to start on it, and a cluster
    would hang in `kind create cluster`."""
    try:
        result = docker_info("{{.CgroupVersion}}")
    except subprocess.TimeoutExpired:
        return None  # docker_problem() says so
    if result.returncode == 0 and result.stdout.strip() == "1":
        return _(
            "Docker runs on cgroup v1, which the kind node image's kubelet (Kubernetes >= 1.35) "
            "refuses"
        )
    return None


def kind_version(binary: str) -> tuple[int, int, int] | None:
    """Version of a kind binary from `kind version` ("kind v0.27.0 go1.23 linux/amd64")."""
    result = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    return parse_kind_version(result.stdout)


def parse_kind_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def kind_download_url(version: str, system: str | None = None, machine: str | None = None) -> str:
    """The release binary for this OS and CPU."""
    system = (system or platform.system()).lower()
    arch = ARCHES.get((machine or platform.machine()).lower())
    if system not in ("linux", "darwin") or arch is None:
        raise TargetUnavailableError(
            _("No kind release binary for {system}/{machine}.").format(
                system=system, machine=machine or platform.machine()
            ),
            _("Install kind yourself (https://kind.sigs.k8s.io), or use --target local."),
        )
    return (
        f"https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{system}-{arch}"
    )


def path_kind_usable(found: tuple[int, int, int] | None, pinned: str) -> bool:
    """kind on PATH is used when it is at least the pinned release: a node image is supported
    with the kind release that built it (and best effort with later ones), never with older."""
    floor = max(parse_kind_version(pinned) or (0, 0, 0), (*MIN_KIND, 0))
    return found is not None and found >= floor


def kind_binary(settings: Settings) -> str:
    """kind from PATH when >= the pinned release, else the pinned release downloaded once into
    CACHE and checked against the sha256 the release publishes."""
    on_path = shutil.which("kind")
    if on_path is not None and path_kind_usable(kind_version(on_path), settings.kind_version):
        return on_path
    binary = CACHE / f"kind-{settings.kind_version}"
    if binary.exists():
        return str(binary)
    url = settings.kind_download_url or kind_download_url(settings.kind_version)
    log.info("downloading kind %s from %s …", settings.kind_version, url)
    try:
        download(url, binary)
        verify_sha256(binary, f"{url}.sha256sum")
    except LabError:
        raise
    except Exception as exc:  # network errors of any kind
        binary.unlink(missing_ok=True)
        raise TargetUnavailableError(
            _(
                "kind on PATH is missing or older than the lab's {version}, and downloading "
                "{version} failed: {error}"
            ).format(version=settings.kind_version, error=exc),
            _("Install kind {version} (https://kind.sigs.k8s.io), or use --target local.").format(
                version=settings.kind_version
            ),
        ) from exc
    return str(binary)


def download(url: str, binary: Path) -> None:
    """Stream `url` into the executable `binary` (written aside, then renamed into place)."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.part")
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        with partial.open("wb") as out:
            for chunk in response.iter_content(chunk_size=1 << 16):
                out.write(chunk)
    partial.chmod(0o755)
    partial.replace(binary)


def verify_sha256(binary: Path, sum_url: str) -> None:
    """Compare `binary` with the sha256 published at `sum_url` ("<hex>  <name>"); on a
    mismatch delete it (it must never run) and raise TargetUnavailableError."""
    response = requests.get(sum_url, timeout=30)
    response.raise_for_status()
    expected = response.text.split()[0].lower()
    actual = hashlib.sha256(binary.read_bytes()).hexdigest()
    if actual != expected:
        binary.unlink()
        raise TargetUnavailableError(
            _(
                "The downloaded kind has sha256 {actual}, but {sum_url} says {expected}; it was "
                "deleted."
            ).format(actual=actual, sum_url=sum_url, expected=expected),
            _(
                "Run again (a broken download); if it persists, install kind yourself "
                "(https://kind.sigs.k8s.io), or use --target local."
            ),
        )


def run(argv: list[str]) -> str:
    """Run a docker/kind command; its stdout, or CommandFailedError with its output."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandFailedError(shlex.join(argv), result.stderr or result.stdout)
    return result.stdout


@dataclass
class KindTarget(KubeStack):
    """Create or reuse the cluster, load the image, apply the overlay, forward the ports.

    The cluster outlives the lab (creating one takes minutes): `down()` removes the namespace
    and the forwards; `kind delete cluster --name ironclad` removes the rest.
    """

    name: str = field(default="kind", init=False)
    fix: ClassVar[str] = N_("Re-apply: ironclad-lab up --target kind.")
    identity: Identity | None = field(default=None, init=False)
    service_port: int | None = field(default=None, init=False)  # host port -> the NodePort

    def up(self) -> Endpoints:
        """The cluster, the image in its nodes, metrics-server; then the `wanted` parts."""
        if problem := docker_problem():
            raise TargetUnavailableError(f"{problem}.", _("Start Docker, or use --target local."))
        try:
            kind = kind_binary(self.settings)
            image_id = self._prepare(kind)
            self.cluster = cluster = self._connect(kind)
            self.objects = self._render(cluster, image_id)
            log.info("applying what the cluster provides (metrics-server) …")
            cluster.apply(
                [o for o in self.objects if part_of(o) is None], self.settings.rollout_timeout
            )
            self.build_parts(self.wanted)
            self._wait_metrics_server(cluster)
            self.forward()
            return self.endpoints
        except BaseException:
            self.down()
            raise

    def _prepare(self, kind: str) -> str:
        """Everything before the API is used: the images archive (`up --archive`) into Docker, the
        cluster, the backend build, the images into the nodes; the backend's image ID.

        With an archive nothing is pulled: the cluster's nodes run the archive's node image
        and the build starts from its base, both by the names `load` gave them (a loaded copy
        has lost its digest, and a digest would force a pull)."""
        s = self.settings
        loaded = load_archive(s.images_archive) if s.images_archive is not None else None
        self._ensure_cluster(kind, loaded)
        image_id = (loaded and archived_backend(loaded, s)) or self._build_image(loaded)
        in_nodes = load_into_kind(loaded.images, s.cluster_name, kind) if loaded else ()
        if s.built_image not in in_nodes:
            log.info("loading %s into kind …", s.built_image)
            load_image(kind, s.built_image, s.cluster_name)
        return image_id

    def _ensure_cluster(self, kind: str, loaded: LoadResult | None = None) -> None:
        """Create the cluster, or reuse it when all its nodes run; then find the host port its
        control-plane maps to the backend's NodePort (Docker keeps the mapping: a reused
        cluster's port is read back, never remembered)."""
        s = self.settings
        node_port = backend_node_port(s.manifests)
        if s.cluster_name not in run([kind, "get", "clusters"]).split():
            log.info("creating the kind cluster %s (takes a few minutes) …", s.cluster_name)
            with tempfile.TemporaryDirectory(prefix="ironclad-kind-") as tmp:
                config = Path(tmp) / "cluster.yaml"
                config.write_text(self._cluster_config(loaded, (node_port, free_port())))
                argv = [kind, "create", "cluster", "--name", s.cluster_name]
                run([*argv, "--config", str(config), "--wait", "180s"])
        elif stopped := stopped_nodes(kind, s.cluster_name):
            raise TargetUnavailableError(
                _("The kind cluster {cluster} exists but these nodes are stopped: {nodes}.").format(
                    cluster=s.cluster_name, nodes=", ".join(stopped)
                ),
                _(
                    "Start them (docker start {nodes}) or delete the cluster (kind delete "
                    "cluster --name {cluster}), then run again."
                ).format(nodes=" ".join(stopped), cluster=s.cluster_name),
            )
        else:
            log.info("reusing the kind cluster %s", s.cluster_name)
        self.service_port = mapped_port(kind, s.cluster_name, node_port)
        if self.service_port is None:
            log.warning(
                _(
                    "the kind cluster {cluster} maps no host port to the backend's NodePort "
                    "{node_port} (an older lab created it): the lessons' load cannot go through "
                    "the Service. Recreate the cluster so it maps one: kind delete cluster "
                    "--name {cluster}, then ironclad-lab up --target kind (creating it takes a "
                    "few minutes)."
                ).format(cluster=s.cluster_name, node_port=node_port)
            )

    def _cluster_config(
        self, loaded: LoadResult | None, node_port: tuple[int, int] | None = None
    ) -> str:
        """cluster.yaml as `kind create cluster` gets it: with the LAB_REGISTRY_MIRROR files
        (written under CACHE: the nodes mount them for as long as the cluster lives), the
        archive's node image and the host port mapped to the NodePort (`node_port`)."""
        s = self.settings
        text = s.kind_config.read_text()
        mirrors = parse_mirrors(s.registry_mirror) if s.registry_mirror else None
        certs_dir = CACHE / f"certs.d-{s.cluster_name}"
        if mirrors:
            write_mirror_files(certs_dir, mirrors)
        node_image = loaded.local_name(node_image_of(text)) if loaded else None
        return kind_cluster_config(
            text, mirrors, certs_dir, node_image=node_image, node_port=node_port
        )

    def _build_image(self, loaded: LoadResult | None = None) -> str:
        """`docker build` the backend image (from the archive's base when one was loaded); its
        image ID."""
        s = self.settings
        log.info("building %s …", s.built_image)
        base = None
        if loaded:
            (ref,) = dockerfile_bases(s.dockerfile.read_text())
            base = loaded.local_name(ref)
        return build_backend(s, base)

    def _connect(self, kind: str) -> NamespaceClient:
        """Record the lab's identity (kind's context, the namespace, the image) and connect."""
        s = self.settings

        def identity() -> Identity:
            return resolve(
                s.namespace,
                kind_context(s.cluster_name),
                image=s.built_image,
                fix=_("Start the kind lab: ironclad-lab up --target kind."),
            )

        try:
            self.identity = identity()
        except LabError:  # a reused cluster whose context left the kubeconfig (e.g. $KUBECONFIG)
            run([kind, "export", "kubeconfig", "--name", s.cluster_name])
            self.identity = identity()
        return NamespaceClient.connect(self.identity)

    def _render(self, cluster: NamespaceClient, image_id: str) -> list[dict[str, Any]]:
        """The kind overlay with the stack's credentials (kept when its Secrets exist) and the
        image ID stamped on the backend's pods."""
        objects = render("kind", self.settings, credentials=stack_credentials(cluster))
        return stamp_image(objects, self.settings.built_image, image_id)

    def _wait_metrics_server(self, cluster: NamespaceClient) -> None:
        log.info("waiting for metrics-server …")
        timeout = self.settings.rollout_timeout
        system = NamespaceClient("kube-system", cluster.api_client)
        system.wait_rollout("metrics-server", timeout=timeout, selector="k8s-app=metrics-server")
        cluster.wait_api_service(METRICS_API, timeout=timeout)

    def forward(self) -> None:
        """The forwards (`KubeStack.forward`), and, once the backend is built, its NodePort
        Service as `Endpoints.service`, after it answered ready through kube-proxy."""
        super().forward()
        if "backend" not in self.parts or self.service_port is None:
            return
        url = f"http://{LOOPBACK}:{self.service_port}"
        cluster = self.cluster
        assert cluster is not None
        poll(
            lambda: http_ok(f"{url}/health/ready"),
            what=_("the backend through its NodePort Service ({url} on this machine)").format(
                url=url
            ),
            timeout=60,
            diagnose=lambda: cluster.diagnose(BACKEND_PODS.selector),
        )
        self._endpoints = replace(self.endpoints, service=url)

    def down(self) -> None:
        """Stop the forwards and delete the lab's namespace (the cluster stays for next time)."""
        stop_forwards(self.forwards)
        if self.cluster is not None:
            self.cluster.delete_namespace(self.settings.rollout_timeout)
        self.forget()


def kind_context(cluster_name: str) -> str:
    """The kubeconfig context `kind create cluster --name NAME` writes (the one place the lab
    spells it: everything else reads the identity recorded in the state file)."""
    return f"kind-{cluster_name}"


def backend_node_port(manifests: Path) -> int:
    """The nodePort the backend's NodePort Service asks for (components/node-port, kind only)."""
    docs = yaml.safe_load_all((manifests / NODE_PORT_SERVICE).read_text())
    service = next(d for d in docs if d and d.get("kind") == "Service")
    return int(service["spec"]["ports"][0]["nodePort"])


def mapped_port(kind: str, cluster_name: str, node_port: int) -> int | None:
    """The host port a node of the cluster maps to `node_port` (`docker port`), None when no
    node maps it (a cluster an older lab created)."""
    for node in run([kind, "get", "nodes", "--name", cluster_name]).split():
        try:
            answer = run(["docker", "port", node, f"{node_port}/tcp"])
        except CommandFailedError:  # "no public port '30080/tcp' published for ..."
            continue
        if (port := parse_docker_port(answer)) is not None:
            return port
    return None


def node_image_of(cluster_yaml: str) -> str:
    """The node image cluster.yaml pins (every node runs the same one)."""
    nodes = yaml.safe_load(cluster_yaml).get("nodes") or []
    found = {node["image"] for node in nodes}
    if len(found) != 1:
        raise LabError(
            _("cluster.yaml names {count} node images; the lab expects one for every node.").format(
                count=len(found)
            ),
            _("Give every node of manifests/kind/cluster.yaml the same pinned image."),
        )
    return str(found.pop())


def stopped_nodes(kind: str, cluster_name: str) -> list[str]:
    """Node containers of the cluster that are not running (e.g. after Docker restarted)."""
    nodes = run([kind, "get", "nodes", "--name", cluster_name]).split()
    if not nodes:
        return []
    states = run(["docker", "inspect", "--format", "{{.Name}} {{.State.Running}}", *nodes])
    return [
        line.split()[0].lstrip("/") for line in states.splitlines() if line.split()[1:] == ["false"]
    ]


def load_image(kind: str, image: str, cluster_name: str) -> None:
    """`kind load docker-image`, else a single-platform archive (kind issue #3795).

    With Docker's containerd image store (the default of new Docker 29 installs and Docker
    Desktop) `docker save` can export an index naming platforms whose content was never pulled,
    and the node's `ctr import --all-platforms` stops at the first missing digest. Saving only
    the image's own platform (`docker image save --platform`, Docker >= 28) avoids that.
    """
    try:
        run([kind, "load", "docker-image", image, "--name", cluster_name])
        return
    except CommandFailedError as exc:
        first = exc.problem
    try:
        image_platform = run(
            ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image]
        ).strip()
        with tempfile.TemporaryDirectory(prefix="ironclad-image-") as tmp:
            archive = str(Path(tmp) / "image.tar")
            run(["docker", "image", "save", "--platform", image_platform, "-o", archive, image])
            run([kind, "load", "image-archive", archive, "--name", cluster_name])
    except CommandFailedError as exc:
        raise LabError(
            _(
                "Could not load {reference} into kind.\n{first}\nSingle-platform archive "
                "fallback: {fallback}"
            ).format(reference=image, first=first, fallback=exc.problem),
            _(
                "Update Docker (>= 28), or switch off Docker's containerd image store (kind "
                "issue #3795); or use --target local."
            ),
        ) from exc


def stamp_image(objects: list[dict[str, Any]], image: str, image_id: str) -> list[dict[str, Any]]:
    """Annotate the pod templates that run `image` with its ID: a rebuilt image rolls them out
    even when the namespace survived an earlier run (the tag stays `:lab`)."""
    for obj in objects:
        template = obj.get("spec", {}).get("template", {})
        containers = template.get("spec", {}).get("containers", [])
        if any(c.get("image") == image for c in containers):
            annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[IMAGE_ID_ANNOTATION] = image_id
    return objects


def with_live_image_stamp(
    cluster: NamespaceClient, objects: list[dict[str, Any]], image: str | None
) -> list[dict[str, Any]]:
    """`objects` with the image ID `lab up --target kind` stamped on the backend's pod template
    (`stamp_image`), read from the live Deployment: re-applying without it (`reset`) would drop
    the annotation and roll every pod out for nothing."""
    if image is None:
        return objects
    image_id = cluster.rollout(BACKEND).template_annotations.get(IMAGE_ID_ANNOTATION)
    return stamp_image(objects, image, image_id) if image_id else objects
