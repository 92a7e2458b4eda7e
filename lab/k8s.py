"""Kubernetes helpers for one namespace, on the official client: apply, waits, pods, evictions.

Over 400 lines on purpose: every Kubernetes API call the lab makes lives in this one module
(`Cluster`), so the verbs and resources a learner's Role must grant are audited in one place.
Pods are `PodState` dataclasses at the core; `pods()` / `pods_frame()` give notebooks a table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

import pandas as pd
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.waits import poll

FIELD_MANAGER = "ironclad-lab"


def documents(source: str | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Objects from YAML text or dicts, with `List` kinds expanded and empty documents dropped."""
    raw = yaml.safe_load_all(source) if isinstance(source, str) else source
    objects: list[dict[str, Any]] = []
    for doc in raw:
        if not doc:
            continue
        if doc.get("kind", "").endswith("List") and "items" in doc:
            objects += documents(doc["items"])
        else:
            objects.append(dict(doc))
    return objects


@dataclass(frozen=True)
class PodState:
    """One pod: phase, readiness, restarts and why a container is not up."""

    name: str
    phase: str | None
    ready: bool
    restarts: int
    detail: str
    node: str | None
    ip: str | None
    deleting: bool
    created: Any  # datetime from the API, None before the pod is stored

    @classmethod
    def of(cls, pod: Any) -> PodState:
        """From a V1Pod."""
        statuses = pod.status.container_statuses or []
        detail = ""
        for status in statuses:
            state = status.state
            if state is not None and state.waiting is not None:
                detail = state.waiting.reason or ""
            elif state is not None and state.terminated is not None:
                detail = state.terminated.reason or ""
            if detail:
                break
        return cls(
            name=pod.metadata.name,
            phase=pod.status.phase,
            ready=bool(statuses) and all(s.ready for s in statuses),
            restarts=sum(s.restart_count or 0 for s in statuses),
            detail=detail,
            node=pod.spec.node_name if pod.spec else None,
            ip=pod.status.pod_ip,
            deleting=pod.metadata.deletion_timestamp is not None,
            created=pod.metadata.creation_timestamp,
        )


POD_COLUMNS = [f.name for f in fields(PodState)]


def pods_frame(pods: Iterable[PodState]) -> pd.DataFrame:
    """Pods as a table, one row each (the notebooks' view of `Cluster.pod_states`)."""
    return pd.DataFrame([asdict(p) for p in pods], columns=POD_COLUMNS)


EVENT_COLUMNS = ["time", "type", "reason", "object", "message", "count"]


def event_row(event: Any) -> dict[str, Any]:
    obj = event.involved_object
    return {
        "time": event.last_timestamp or event.event_time or event.metadata.creation_timestamp,
        "type": event.type,
        "reason": event.reason,
        "object": f"{obj.kind}/{obj.name}",
        "message": (event.message or "").strip(),
        "count": event.count or 1,
    }


def rollout_row(workload: Any) -> dict[str, Any]:
    """Replica counts of a Deployment or StatefulSet (missing counts are 0)."""
    status = workload.status
    return {
        "desired": workload.spec.replicas or 0,
        "replicas": status.replicas or 0,
        "updated": status.updated_replicas or 0,
        "ready": status.ready_replicas or 0,
        "available": status.available_replicas or 0,
    }


def rollout_complete(workload: Any) -> bool:
    """The rule `kubectl rollout status` uses: observed, all updated, old ones gone, available."""
    counts = rollout_row(workload)
    observed = (workload.status.observed_generation or 0) >= (workload.metadata.generation or 0)
    if workload.kind == "StatefulSet":
        revision_done = workload.status.update_revision == workload.status.current_revision
        return observed and revision_done and counts["ready"] == counts["desired"]
    return (
        observed
        and counts["updated"] == counts["desired"]
        and counts["replicas"] == counts["updated"]
        and counts["available"] == counts["desired"]
    )


def match_labels_selector(workload: Any) -> str:
    """A Deployment's or StatefulSet's spec.selector.matchLabels as a label selector string."""
    labels = workload.spec.selector.match_labels or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


@dataclass(frozen=True)
class Eviction:
    """Outcome of an eviction request: refused (HTTP 429) means a PodDisruptionBudget said no."""

    pod: str
    evicted: bool
    status: int
    message: str

    @property
    def refused(self) -> bool:
        return self.status == 429


@dataclass(frozen=True)
class ProbeResult:
    """One request from a throwaway pod: `ok` when it got through (any HTTP status counts)."""

    url: str
    labels: dict[str, str]
    ok: bool
    output: str


@dataclass(frozen=True)
class HpaStatus:
    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    cpu_utilization: int | None
    cpu_target: int | None


class Cluster:
    """One namespace of one cluster, through the official Python client."""

    def __init__(
        self, namespace: str, api_client: client.ApiClient, probe_image: str | None = None
    ) -> None:
        self.namespace = namespace
        self.api_client = api_client
        self.probe_image = probe_image  # what `probe()` runs (the backend image, loaded)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)

    @classmethod
    def connect(
        cls, namespace: str, context: str | None = None, probe_image: str | None = None
    ) -> Cluster:
        """Use the kubeconfig (default location, optional context)."""
        try:
            api_client = config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
        except (config.ConfigException, FileNotFoundError) as exc:
            raise LabError(
                f"No kubeconfig for context {context or '(current)'}: {exc}",
                "Start the kind lab: ironclad-lab up --target kind.",
            ) from exc
        return cls(namespace, api_client, probe_image)

    @cached_property
    def dynamic(self) -> Any:
        from kubernetes.dynamic import DynamicClient

        return DynamicClient(self.api_client)  # type: ignore[no-untyped-call]

    # --- apply -------------------------------------------------------------------------------
    def apply(
        self, source: str | Iterable[Mapping[str, Any]], timeout: float = 300.0
    ) -> pd.DataFrame:
        """Server-side apply every object (field manager `ironclad-lab`); one row per object.

        Idempotent: applying the same objects again changes nothing. A Namespace that is still
        terminating (an earlier teardown) is waited out first: the API server refuses new
        objects in it.
        """
        objects = documents(source)
        for obj in objects:
            if obj["kind"] == "Namespace" and obj.get("apiVersion") == "v1":
                self.wait_namespace_usable(obj["metadata"]["name"], timeout)
        rows = []
        for obj in objects:
            resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            namespace = None
            if resource.namespaced:
                namespace = obj.get("metadata", {}).get("namespace") or self.namespace
            self.dynamic.server_side_apply(
                resource,
                body=obj,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            rows.append(
                {"kind": obj["kind"], "name": obj["metadata"]["name"], "namespace": namespace}
            )
        return pd.DataFrame(rows, columns=["kind", "name", "namespace"])

    def wait_namespace_usable(self, name: str, timeout: float = 300.0) -> None:
        """Return once namespace `name` is absent or active (not terminating)."""

        def usable() -> bool:
            try:
                namespace: Any = self.core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return namespace.metadata.deletion_timestamp is None

        poll(
            usable,
            what=f"namespace {name} to finish terminating",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: Cluster(name, self.api_client).pods().to_string(),
        )

    def wait_api_service(self, name: str, timeout: float = 300.0) -> None:
        """Wait until an aggregated API (e.g. v1beta1.metrics.k8s.io) reports Available."""

        api = client.ApiregistrationV1Api(self.api_client)

        def conditions() -> list[Any]:
            service: Any = api.read_api_service(name)
            return list(service.status.conditions or []) if service.status else []

        poll(
            lambda: any(c.type == "Available" and c.status == "True" for c in conditions()),
            what=f"APIService {name} Available",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: "\n".join(
                f"{c.type}={c.status} {c.reason}: {c.message}" for c in conditions()
            ),
        )

    # --- reading ------------------------------------------------------------------------------
    def pod_states(self, selector: str | None = None) -> list[PodState]:
        """Pods (optionally by label selector), sorted by name."""
        items = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted((PodState.of(p) for p in items), key=lambda pod: pod.name)

    def pod_objects(self, selector: str | None = None) -> list[Any]:
        """The V1Pod objects themselves (e.g. for `lastState` of their containers)."""
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def pods(self, selector: str | None = None) -> pd.DataFrame:
        """`pod_states` as a table, for notebooks."""
        return pods_frame(self.pod_states(selector))

    def ready_pods(self, selector: str) -> list[str]:
        """Names of the ready, not-terminating pods matching `selector`, sorted (the
        port-forwards call this on every connection: no pandas here)."""
        return [p.name for p in self.pod_states(selector) if p.ready and not p.deleting]

    def running_pods(self, selector: str) -> list[str]:
        """Names of the running, not-terminating pods matching `selector` (ready or not), sorted."""
        states = self.pod_states(selector)
        return [p.name for p in states if p.phase == "Running" and not p.deleting]

    def events(self, limit: int = 20) -> pd.DataFrame:
        """The namespace's most recent events, oldest first."""
        items = self.core.list_namespaced_event(self.namespace).items
        frame = pd.DataFrame([event_row(e) for e in items], columns=EVENT_COLUMNS)
        return frame.sort_values("time", key=lambda t: pd.to_datetime(t, utc=True)).tail(limit)

    def logs(self, pod: str, tail: int = 50, container: str | None = None) -> str:
        return str(
            self.core.read_namespaced_pod_log(
                pod, self.namespace, tail_lines=tail, container=container
            )
        )

    def hpa(self, name: str) -> HpaStatus:
        """Current state of a HorizontalPodAutoscaler (CPU utilization when it has one)."""
        hpa: Any = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, self.namespace)
        current = next(
            (
                m.resource.current.average_utilization
                for m in hpa.status.current_metrics or []
                if m.type == "Resource" and m.resource.name == "cpu"
            ),
            None,
        )
        target = next(
            (
                m.resource.target.average_utilization
                for m in hpa.spec.metrics or []
                if m.type == "Resource" and m.resource.name == "cpu"
            ),
            None,
        )
        return HpaStatus(
            name,
            hpa.spec.min_replicas or 1,
            hpa.spec.max_replicas,
            hpa.status.current_replicas or 0,
            hpa.status.desired_replicas or 0,
            current,
            target,
        )

    def diagnose(self, selector: str | None = None, log_lines: int = 10) -> str:
        """Events, pod phases, container states and the last log lines of the pods not ready."""
        pods = self.pods(selector)
        parts = [
            "Pods:",
            pods.to_string(index=False) if len(pods) else "(none)",
            "Recent events:",
            self.events(10).to_string(index=False),
        ]
        for name in pods[~pods["ready"]]["name"]:
            try:
                parts += [f"Last log lines of {name}:", self.logs(name, tail=log_lines)]
            except ApiException as exc:
                parts.append(f"(no logs for {name}: {exc.reason})")
        return "\n".join(parts)

    # --- rollouts -----------------------------------------------------------------------------
    def _workload(self, name: str, kind: str) -> Any:
        workload: Any
        if kind == "StatefulSet":
            workload = self.apps.read_namespaced_stateful_set(name, self.namespace)
        elif kind == "Deployment":
            workload = self.apps.read_namespaced_deployment(name, self.namespace)
        else:
            raise LabError(
                f"Cannot follow a rollout of kind {kind}.", "Use Deployment or StatefulSet."
            )
        workload.kind = kind
        return workload

    def wait_rollout(
        self,
        name: str,
        kind: str = "Deployment",
        timeout: float = 300.0,
        selector: str | None = None,
    ) -> dict[str, Any]:
        """Wait until the rollout is complete and as many of its pods are ready (and not
        terminating) as it wants; on timeout, the diagnostics of its pods.

        The pod count closes a race the status counts leave open: right after a pod is killed
        the controller may not have noticed yet, and its status still says "all available".
        `selector` defaults to the workload's own matchLabels.
        """
        pods = selector

        def done() -> dict[str, Any] | None:
            nonlocal pods
            workload = self._workload(name, kind)
            pods = pods or match_labels_selector(workload)
            counts = rollout_row(workload)
            if not rollout_complete(workload) or len(self.ready_pods(pods)) < counts["desired"]:
                return None
            return counts

        return poll(
            done,
            what=f"{kind} {name} rollout",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: self.diagnose(pods or f"app={name}"),
        )

    def restart(self, name: str, kind: str = "Deployment") -> str:
        """Trigger a rolling update, like `kubectl rollout restart`; returns the stamp used."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        }
        if kind == "StatefulSet":
            self.apps.patch_namespaced_stateful_set(name, self.namespace, patch)
        else:
            self.apps.patch_namespaced_deployment(name, self.namespace, patch)
        return stamp

    def rollout_timeline(
        self, name: str, timeout: float = 300.0, interval: float = 1.0
    ) -> pd.DataFrame:
        """Sample replica counts until the rollout completes: one row per sample, `t` in s."""
        start = time.monotonic()
        rows = []
        while True:
            workload = self._workload(name, "Deployment")
            rows.append({"t": round(time.monotonic() - start, 2), **rollout_row(workload)})
            if rollout_complete(workload) and len(rows) > 1:
                return pd.DataFrame(rows)
            if time.monotonic() - start > timeout:
                raise LabError(
                    f"Deployment {name} did not finish its rollout in {timeout:g} s.",
                    f"Look at cluster.diagnose('app={name}').",
                )
            time.sleep(interval)

    # --- disruption ---------------------------------------------------------------------------
    def evict(self, pod: str) -> Eviction:
        """Ask for an eviction (honours PodDisruptionBudgets: refused with HTTP 429)."""
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=pod, namespace=self.namespace),
        )
        try:
            self.core.create_namespaced_pod_eviction(pod, self.namespace, body)
        except ApiException as exc:
            if exc.status != 429:
                raise
            return Eviction(pod, False, 429, _api_message(exc))
        return Eviction(pod, True, 201, "evicted")

    def delete_pod(self, pod: str, grace_period_seconds: int | None = None) -> None:
        """Delete a pod (no PDB check: this is what a crash or `kubectl delete pod` does)."""
        self.core.delete_namespaced_pod(
            pod, self.namespace, grace_period_seconds=grace_period_seconds
        )

    def delete_labelled(self, api_version: str, kind: str, selector: str) -> list[str]:
        """Delete this namespace's objects of a kind matching a label selector (`lab.reset`
        removes run-time objects so); returns their names, sorted."""
        resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        found = resource.get(namespace=self.namespace, label_selector=selector)
        names = sorted(item.metadata.name for item in found.items)
        for name in names:
            try:
                resource.delete(name=name, namespace=self.namespace)
            except ApiException as exc:
                if exc.status != 404:  # already gone: what we wanted
                    raise
        return names

    def delete_namespace(self, timeout: float = 300.0) -> None:
        """Delete this namespace and wait until it is gone (no-op when it does not exist)."""
        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
        poll(
            self._namespace_gone,
            what=f"namespace {self.namespace} deleted",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: self.pods().to_string(index=False),
        )

    def _namespace_gone(self) -> bool:
        try:
            self.core.read_namespace(self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    # --- probes -------------------------------------------------------------------------------
    def probe(
        self,
        url: str,
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        image: str | None = None,
    ) -> ProbeResult:
        """Reach `url` (http://... GET, or tcp://host:port connect) from a short-lived pod with
        `labels`: NetworkPolicy allowed/denied checks with real packets. The pod runs the
        backend image (`probe_image`, already loaded into kind) unless `image` is given."""
        image = image or self.probe_image
        if not image:
            raise LabError(
                "No image to run the probe pod with.",
                "Pass image=..., or connect with Cluster.connect(..., probe_image=...).",
            )
        labels = dict(labels or {"app": "lab-probe"})
        name = f"lab-probe-{uuid.uuid4().hex[:8]}"
        self.core.create_namespaced_pod(self.namespace, probe_pod(name, url, labels, image))
        try:
            phase = poll(
                lambda: self._finished_phase(name),
                what=f"probe pod {name}",
                timeout=timeout,
                interval=0.5,
                progress=False,
                diagnose=lambda: self.diagnose(f"lab-probe={name}"),
            )
            output = self.logs(name, tail=5)
        finally:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        return ProbeResult(url, labels, phase == "Succeeded", output.strip())

    def _finished_phase(self, name: str) -> str | None:
        pod: Any = self.core.read_namespaced_pod(name, self.namespace)
        phase = pod.status.phase
        return str(phase) if phase in ("Succeeded", "Failed") else None


PROBE_SCRIPT = """\
import socket, sys, urllib.error, urllib.parse, urllib.request
url = urllib.parse.urlsplit(sys.argv[1])
try:
    if url.scheme == "tcp":
        socket.create_connection((url.hostname, url.port), timeout=3).close()
        print("connected")
    else:
        print(f"HTTP {urllib.request.urlopen(sys.argv[1], timeout=3).status}")
except urllib.error.HTTPError as exc:
    print(f"HTTP {exc.code}")
except OSError as exc:
    print(f"no connection: {exc}"); sys.exit(1)
"""


# A pod whose egress (DNS included) is denied would otherwise spend ndots:5 x search domains x
# 5 s x 2 attempts in getaddrinfo (no socket timeout bounds it) and outlive the probe's wait:
# 1 s per query, one attempt, names with a dot tried as given first.
PROBE_DNS = client.V1PodDNSConfig(
    options=[
        client.V1PodDNSConfigOption(name="ndots", value="1"),
        client.V1PodDNSConfigOption(name="timeout", value="1"),
        client.V1PodDNSConfigOption(name="attempts", value="1"),
    ]
)


def probe_pod(name: str, url: str, labels: Mapping[str, str], image: str) -> client.V1Pod:
    """A pod that makes one request and exits; meets Pod Security "restricted"."""
    security = client.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        run_as_user=10001,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    # Never Ready: a probe pod that borrows `app: backend` must not join the backend Service's
    # endpoints (nothing listens on 3000 in it) nor count as healthy for the PDB.
    never_ready = client.V1Probe(
        _exec=client.V1ExecAction(command=["python", "-c", "raise SystemExit(1)"]),
        period_seconds=30,
    )
    container = client.V1Container(
        name="probe",
        image=image,
        image_pull_policy="IfNotPresent",
        command=["python", "-c", PROBE_SCRIPT, url],
        security_context=security,
        readiness_probe=never_ready,
        resources=client.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "32Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
        ),
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={**labels, "lab-probe": name}),
        spec=client.V1PodSpec(
            containers=[container],
            restart_policy="Never",
            automount_service_account_token=False,
            dns_config=PROBE_DNS,
        ),
    )


def _api_message(exc: ApiException) -> str:
    try:
        return str(yaml.safe_load(exc.body or "{}").get("message", exc.reason))
    except (yaml.YAMLError, AttributeError):
        return str(exc.reason)
