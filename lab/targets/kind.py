"""The `kind` target: a kind cluster with the image loaded, the overlay applied, ports forwarded."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.errors import LabError, ProcessFailedError, TargetUnavailableError
from lab.k8s import Cluster, render_kustomize
from lab.portforward import Forward, pod_connector
from lab.settings import Settings
from lab.targets import Endpoints, docker_problem
from lab.targets.local import http_ok
from lab.waits import poll

MIN_KIND = (0, 24)
CHAOS_SECRET = "chaos-secret"  # noqa: S105 - the name of a Secret, not its value
CACHE = Path.home() / ".cache" / "ironclad-lab"


def kind_version(binary: str) -> tuple[int, int, int] | None:
    """Version of a kind binary from `kind version` ("kind v0.27.0 go1.23 linux/amd64")."""
    result = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    return parse_kind_version(result.stdout)


def parse_kind_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def kind_binary(settings: Settings) -> str:
    """kind >= v0.24 from PATH, else the pinned release fetched by pytest-kind (cached)."""
    on_path = shutil.which("kind")
    if on_path is not None and (kind_version(on_path) or (0, 0, 0)) >= (*MIN_KIND, 0):
        return on_path
    from pytest_kind import cluster as pytest_kind_cluster

    class PinnedKindCluster(pytest_kind_cluster.KindCluster):  # type: ignore[misc]
        """pytest-kind's downloader, pinned to `settings.kind_version` (its default is v0.17)."""

        def ensure_kind(self) -> None:
            pytest_kind_cluster.KIND_VERSION = settings.kind_version  # read by ensure_kind
            super().ensure_kind()

    CACHE.mkdir(parents=True, exist_ok=True)
    pinned = PinnedKindCluster(settings.cluster_name,
                               kind_path=CACHE / f"kind-{settings.kind_version}")
    try:
        pinned.ensure_kind()
    except Exception as exc:  # network errors of any kind
        raise TargetUnavailableError(
            f"kind is not on PATH (or older than v0.24) and downloading "
            f"{settings.kind_version} failed: {exc}",
            "Install kind >= v0.24 (https://kind.sigs.k8s.io), or use --target local.") from exc
    return str(pinned.kind_path)


def run(argv: list[str], what: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ProcessFailedError(what, f"failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


@dataclass
class KindTarget:
    """Create or reuse the cluster, load the image, apply the overlay, forward the ports.

    The cluster outlives the lab (creating one takes minutes): `down()` removes the namespace
    and the forwards; `kind delete cluster --name ironclad` removes the rest.
    """

    settings: Settings
    name: str = "kind"
    cluster: Cluster | None = field(default=None, init=False)
    forwards: list[Forward] = field(default_factory=list, init=False)

    def up(self) -> Endpoints:
        if problem := docker_problem():
            raise TargetUnavailableError(f"{problem}.", "Start Docker, or use --target local.")
        try:
            return self._start(kind_binary(self.settings))
        except BaseException:
            self.down()
            raise

    def _start(self, kind: str) -> Endpoints:
        s = self.settings
        if s.cluster_name not in run([kind, "get", "clusters"], "kind get clusters").split():
            run([kind, "create", "cluster", "--name", s.cluster_name, "--config",
                 str(s.kind_config), "--wait", "180s"], "kind create cluster")
        run(["docker", "build", "-f", str(s.dockerfile), "-t", s.image, str(s.repo_root)],
            "docker build")
        run([kind, "load", "docker-image", s.image, "--name", s.cluster_name],
            "kind load docker-image")
        self.cluster = cluster = Cluster.connect(s.namespace, context=f"kind-{s.cluster_name}")
        cluster.apply(render_kustomize(s.kind_overlay))
        for kind_name, names in (("StatefulSet", cluster.apps.list_namespaced_stateful_set),
                                 ("Deployment", cluster.apps.list_namespaced_deployment)):
            workloads: list[Any] = names(s.namespace).items
            for workload in workloads:
                cluster.wait_rollout(workload.metadata.name, kind_name, s.rollout_timeout,
                                     selector=_selector(workload))
        system = Cluster("kube-system", cluster.api_client)
        system.wait_rollout("metrics-server", timeout=s.rollout_timeout,
                            selector="k8s-app=metrics-server")
        return self._forward(cluster)

    def _forward(self, cluster: Cluster) -> Endpoints:
        backend_pods = "app=backend,!lab-probe"  # probe pods may borrow the app label
        backends = cluster.ready_pods(backend_pods)

        def forward(name: str, selector: str, port: int, slot: int | None, health: str) -> str:
            connector = pod_connector(cluster.api_client.configuration, cluster.namespace,
                                      lambda: cluster.ready_pods(selector), port, slot)
            fwd = Forward(name, connector).start()
            self.forwards.append(fwd)
            poll(lambda: http_ok(fwd.url + health), what=f"port-forward to {name}",
                 timeout=60, diagnose=lambda: fwd.last_error)
            return fwd.url

        urls = [forward(f"backend-{i}", backend_pods, 3000, i, "/health/ready")
                for i in range(len(backends))]
        service = forward("backend", backend_pods, 3000, None, "/health/ready")
        prometheus = forward("prometheus", "app=prometheus", 9090, 0, "/-/ready")
        grafana = (forward("grafana", "app=grafana", 3000, 0, "/api/health")
                   if cluster.ready_pods("app=grafana") else None)
        return Endpoints(target=self.name, backend=service, backends=urls,
                         prometheus=prometheus, grafana=grafana,
                         chaos_token=chaos_token(cluster))

    def down(self) -> None:
        """Stop the forwards and delete the lab's namespace (the cluster stays for next time)."""
        for fwd in self.forwards:
            fwd.stop()
        self.forwards = []
        if self.cluster is not None:
            self.cluster.delete_namespace(self.settings.rollout_timeout)
            self.cluster = None


def _selector(workload: Any) -> str:
    labels = workload.spec.selector.match_labels or {}
    return ",".join(f"{key}={value}" for key, value in labels.items())


def chaos_token(cluster: Cluster) -> str:
    """The backend's chaos token: key CHAOS_TOKEN of the Secret `chaos-secret`."""
    secret: Any = cluster.core.read_namespaced_secret(CHAOS_SECRET, cluster.namespace)
    value = (secret.data or {}).get("CHAOS_TOKEN")
    if not value:
        raise LabError(f"Secret {CHAOS_SECRET} in {cluster.namespace} has no CHAOS_TOKEN key.",
                       "Re-apply the manifests: python -m lab up --target kind.")
    return base64.b64decode(value).decode()
