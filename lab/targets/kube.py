"""What the two Kubernetes targets (kind, cluster) share once the objects are applied: wait for
the lab's workloads, forward the backend, Prometheus and Grafana ports, read the chaos token.

Every call goes through `lab.k8s.NamespaceClient` in the lab's namespace only, so it works with the
learner Role of `lab.rbac` on a shared cluster.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from lab.contract import BACKEND, BACKEND_HPA, CHAOS_SECRET, GRAFANA, PROMETHEUS
from lab.credentials import GENERATED, Credentials, generate
from lab.errors import LabError
from lab.k8s import NamespaceClient, NotFoundError, pods_of
from lab.net import http_ok
from lab.portforward import Forward
from lab.targets.base import Endpoints
from lab.waits import poll

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forwarded:
    """What `up` forwards: a workload, its pods' selector, their container port, and the path
    that answers 2xx once one is ready (tests/manifests checks each against the overlays)."""

    name: str
    selector: str
    port: int
    ready_path: str


BACKEND_PODS = Forwarded(BACKEND, pods_of({"app": BACKEND}), 3000, "/health/ready")  # no probes
PROMETHEUS_PODS = Forwarded(PROMETHEUS, f"app={PROMETHEUS}", 9090, "/-/ready")
GRAFANA_PODS = Forwarded(GRAFANA, f"app={GRAFANA}", 3000, "/api/health")
FORWARDED = (BACKEND_PODS, PROMETHEUS_PODS, GRAFANA_PODS)


def wait_hpa_floor(cluster: NamespaceClient, timeout: float) -> None:
    """Wait until the HPA has raised the backend to its minReplicas.

    The HPA owns the backend's replica count (the manifest leaves spec.replicas unset): a new
    Deployment starts at 1 until the HPA's first sync, and the rollout waits follow
    spec.replicas.
    """
    floor = cluster.hpa(BACKEND_HPA).min_replicas
    log.info("waiting for %s to scale %s to %d …", BACKEND_HPA, BACKEND, floor)

    def scaled_to_floor() -> bool:
        return cluster.rollout(BACKEND).desired >= floor

    poll(
        scaled_to_floor,
        what=f"{BACKEND_HPA} to scale {BACKEND} to its {floor} minReplicas",
        timeout=timeout,
        interval=1.0,
        diagnose=lambda: cluster.diagnose(BACKEND_PODS.selector),
    )


def wait_workloads(cluster: NamespaceClient, timeout: float) -> None:
    """Wait for every StatefulSet, then every Deployment, of the namespace to roll out."""
    for kind in ("StatefulSet", "Deployment"):
        for workload in cluster.rollouts(kind):
            log.info("waiting for %s/%s …", kind, workload.name)
            cluster.wait_rollout(workload.name, kind, timeout)


def forward_stack(
    cluster: NamespaceClient, target: str, forwards: list[Forward], fix: str
) -> Endpoints:
    """Forward every ready backend pod, the backend "Service", Prometheus and Grafana (when it
    runs); each forward is appended to `forwards` (the caller stops them). `fix` is what to do
    when the chaos token is missing (re-apply with this target)."""

    def forward(pods_of: Forwarded, slot: int | None, name: str = "") -> str:
        # A Service-like forward (slot None) picks among ready pods; a forward to one replica
        # follows that replica while it runs, ready or not (like kubectl port-forward), so a
        # learner still reaches it while its readiness says 503.
        fwd = Forward(
            name or pods_of.name, cluster.connector(pods_of.selector, pods_of.port, slot)
        ).start()
        forwards.append(fwd)
        poll(
            lambda: http_ok(fwd.url + pods_of.ready_path),
            what=f"port-forward to {fwd.name}",
            timeout=60,
            diagnose=lambda: fwd.last_error,
        )
        return fwd.url

    log.info("forwarding the backend, Prometheus and Grafana ports …")
    replicas = len(cluster.ready_pod_names(BACKEND_PODS.selector))
    urls = [forward(BACKEND_PODS, i, f"{BACKEND}-{i}") for i in range(replicas)]
    service = forward(BACKEND_PODS, None)
    prometheus = forward(PROMETHEUS_PODS, 0)
    grafana = forward(GRAFANA_PODS, 0) if cluster.ready_pod_names(GRAFANA_PODS.selector) else None
    return Endpoints(
        target=target,
        backend=service,
        backends=urls,
        prometheus=prometheus,
        grafana=grafana,
        chaos_token=chaos_token(cluster, fix),
    )


def live_credentials(cluster: NamespaceClient) -> Credentials:
    """The credentials the stack in `cluster`'s namespace already has (its Secrets of
    `lab.credentials.GENERATED`, decoded; absent ones left out): what `up` and `reset` keep."""
    found: Credentials = {}
    for name in GENERATED:
        try:
            data = cluster.secret(name)
        except NotFoundError:  # a new stack (or its namespace not created yet)
            continue
        found[name] = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return found


def stack_credentials(cluster: NamespaceClient) -> Credentials:
    """The stack's credentials: the live ones kept, the missing ones generated."""
    return generate(live_credentials(cluster))


def chaos_token(cluster: NamespaceClient, fix: str) -> str:
    """The backend's chaos token: key CHAOS_TOKEN of the Secret CHAOS_SECRET."""
    value = cluster.secret(CHAOS_SECRET).get("CHAOS_TOKEN")
    if not value:
        raise LabError(f"Secret {CHAOS_SECRET} in {cluster.namespace} has no CHAOS_TOKEN key.", fix)
    return base64.b64decode(value).decode()


def stop_forwards(forwards: list[Forward]) -> None:
    """Stop every forward and empty the list."""
    for fwd in forwards:
        fwd.stop()
    forwards.clear()
