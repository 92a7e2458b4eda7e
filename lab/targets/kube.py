"""What the two Kubernetes targets (kind, cluster) share: build the stack's parts (each
lesson's objects, `lab.lessons`), wait for the lab's workloads, forward the backend, Prometheus
and Grafana ports, read the chaos token.

Every call goes through `lab.k8s.NamespaceClient` in the lab's namespace only, so it works with the
learner Role of `lab.rbac` on a shared cluster.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lab.contract import BACKEND, BACKEND_HPA, CHAOS_SECRET, GRAFANA, POSTGRES, PROMETHEUS
from lab.credentials import GENERATED, Credentials, generate
from lab.errors import LabError
from lab.i18n import _
from lab.k8s import NamespaceClient, NotFoundError, pods_of
from lab.lessons import PARTS, check_parts, objects_of
from lab.net import http_ok
from lab.portforward import Forward
from lab.settings import Settings
from lab.targets.base import Endpoints, ReplicaRecord
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
        what=_("{hpa} to scale {deployment} to its {floor} minReplicas").format(
            hpa=BACKEND_HPA, deployment=BACKEND, floor=floor
        ),
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


def build_parts(
    cluster: NamespaceClient,
    objects: list[dict[str, Any]],
    built: tuple[str, ...],
    parts: tuple[str, ...],
    timeout: float,
    on_change: Callable[[tuple[str, ...]], None],
) -> None:
    """Make exactly `parts` (`lab.lessons.PARTS` order) built in `cluster`: the objects of
    extra parts deleted, newest first, then each missing part's objects applied (server-side
    apply) and waited for, in order. `on_change` gets what is built after every step (so a
    failure in the middle leaves the caller knowing)."""
    for part in reversed(built):
        if part not in parts:
            log.info("removing the %s part …", part)
            cluster.delete(objects_of(objects, part), timeout=timeout)
            built = built[:-1]
            on_change(built)
    for part in parts:
        if part in built:
            continue
        mine = objects_of(objects, part)
        log.info("applying the %s part (%d objects, server-side apply) …", part, len(mine))
        cluster.apply(mine, timeout=timeout)
        wait_part(cluster, part, timeout)
        built = (*built, part)
        on_change(built)


@dataclass
class KubeStack:
    """What the kind and cluster targets share: the rendered stack (`objects`), the parts of it
    built in the namespace, and the port-forwards to what runs. `fix` is what to tell a learner
    whose stack lost its chaos token."""

    settings: Settings
    wanted: tuple[str, ...] = PARTS  # what `up()` builds
    cluster: NamespaceClient | None = field(default=None, init=False)
    objects: list[dict[str, Any]] = field(default_factory=list, init=False)
    parts: tuple[str, ...] = field(default=(), init=False)  # built, in order
    forwards: list[Forward] = field(default_factory=list, init=False)
    records: tuple[ReplicaRecord, ...] = field(default=(), init=False)  # pods: the kubelet's
    _endpoints: Endpoints | None = field(default=None, init=False)
    name: str = field(default="", init=False)
    fix: ClassVar[str]

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise LabError(_("The {target} lab is not up.").format(target=self.name), _(self.fix))
        return self._endpoints

    def build(self, parts: Sequence[str]) -> None:
        """Make exactly `parts` built (`build_parts`), then forward what runs (also after a
        failure: the lab keeps serving what is built)."""
        stop_forwards(self.forwards)
        try:
            self.build_parts(parts)
        finally:
            self.forward()

    def build_parts(self, parts: Sequence[str]) -> None:
        assert self.cluster is not None

        def built(now: tuple[str, ...]) -> None:
            self.parts = now

        timeout = self.settings.rollout_timeout
        build_parts(self.cluster, self.objects, self.parts, check_parts(parts), timeout, built)

    def forward(self) -> None:
        assert self.cluster is not None
        self._endpoints = forward_stack(
            self.cluster, self.name, self.forwards, self.fix, self.parts
        )

    def forget(self) -> None:
        """After teardown: nothing built, nothing forwarded."""
        stop_forwards(self.forwards)
        self.cluster, self.parts, self._endpoints = None, (), None


def wait_part(cluster: NamespaceClient, part: str, timeout: float) -> None:
    """Wait until the workloads of a just-applied `part` are ready."""
    if part == "postgres":
        cluster.wait_rollout(POSTGRES, "StatefulSet", timeout)
    elif part == "backend":
        wait_hpa_floor(cluster, timeout)
        cluster.wait_rollout(BACKEND, "Deployment", timeout)
    elif part == "monitoring":
        wait_workloads(cluster, timeout)


def forward_stack(
    cluster: NamespaceClient, target: str, forwards: list[Forward], fix: str, parts: tuple[str, ...]
) -> Endpoints:
    """Forward every ready backend pod, the backend "Service", Prometheus and Grafana (when it
    runs), as far as `parts` built them; each forward is appended to `forwards` (the caller
    stops them). `fix` is what to do when the chaos token is missing (re-apply)."""

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
            what=_("port-forward to {name}").format(name=fwd.name),
            timeout=60,
            diagnose=lambda: fwd.last_error,
        )
        return fwd.url

    log.info("forwarding the ports of what is built …")
    urls, service, prometheus, grafana = [], "", "", None
    if "backend" in parts:
        replicas = len(cluster.ready_pod_names(BACKEND_PODS.selector))
        urls = [forward(BACKEND_PODS, i, f"{BACKEND}-{i}") for i in range(replicas)]
        service = forward(BACKEND_PODS, None)
    if "monitoring" in parts:
        prometheus = forward(PROMETHEUS_PODS, 0)
        ready = cluster.ready_pod_names(GRAFANA_PODS.selector)
        grafana = forward(GRAFANA_PODS, 0) if ready else None
    return Endpoints(
        target=target,
        backend=service,
        backends=urls,
        prometheus=prometheus,
        grafana=grafana,
        chaos_token=chaos_token(cluster, fix) if "config" in parts else "",
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
        raise LabError(
            _("Secret {secret} in {namespace} has no CHAOS_TOKEN key.").format(
                secret=CHAOS_SECRET, namespace=cluster.namespace
            ),
            _(fix),
        )
    return base64.b64decode(value).decode()


def stop_forwards(forwards: list[Forward]) -> None:
    """Stop every forward and empty the list."""
    for fwd in forwards:
        fwd.stop()
    forwards.clear()
