"""What the lab reads from the API's objects: dataclasses and the rules on the client's models
(rollout completion, selectors, event times), and manifests as dicts (`documents`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import yaml

POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"

# The label every probe pod carries (its name as the value). A probe may borrow a workload's
# labels (`app: backend`) to test a NetworkPolicy, so a workload's pods exclude it (`pods_of`).
PROBE_LABEL = "lab-probe"


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
    """One pod: phase, readiness, restarts, why a container is not up, and how the last
    one that ended ended (`last_reason` "OOMKilled" with `last_exit_code` 137 after an OOM
    kill)."""

    name: str
    phase: str | None
    ready: bool
    restarts: int
    detail: str
    node: str | None
    ip: str | None
    deleting: bool
    created: datetime | None  # None before the pod is stored
    uid: str | None = None
    last_reason: str = ""
    last_exit_code: int | None = None

    @classmethod
    def of(cls, pod: Any) -> PodState:
        """From a V1Pod (one just created may have no status yet)."""
        pod_status = pod.status
        statuses = (pod_status.container_statuses if pod_status else None) or []
        detail = ""
        for status in statuses:
            state = status.state
            if state is not None and state.waiting is not None:
                detail = state.waiting.reason or ""
            elif state is not None and state.terminated is not None:
                detail = state.terminated.reason or ""
            if detail:
                break
        last = next(
            (
                s.last_state.terminated
                for s in statuses
                if s.last_state is not None and s.last_state.terminated is not None
            ),
            None,
        )
        return cls(
            name=pod.metadata.name,
            phase=pod_status.phase if pod_status else None,
            ready=bool(statuses) and all(s.ready for s in statuses),
            restarts=sum(s.restart_count or 0 for s in statuses),
            detail=detail,
            node=pod.spec.node_name if pod.spec else None,
            ip=pod_status.pod_ip if pod_status else None,
            deleting=pod.metadata.deletion_timestamp is not None,
            created=pod.metadata.creation_timestamp,
            uid=pod.metadata.uid,
            last_reason=(last.reason or "") if last else "",
            last_exit_code=last.exit_code if last else None,
        )


@dataclass(frozen=True)
class Event:
    """One event of the namespace: when it last happened, Normal/Warning, why, about what."""

    time: datetime | None
    type: str | None
    reason: str | None
    object: str  # Kind/name
    message: str
    count: int

    @classmethod
    def of(cls, event: Any) -> Event:
        """From a CoreV1Event."""
        obj = event.involved_object
        return cls(
            time=event_time(event),
            type=event.type,
            reason=event.reason,
            object=f"{obj.kind}/{obj.name}",
            message=(event.message or "").strip(),
            count=event.count or 1,
        )


def event_time(event: Any) -> Any:
    """When an event last happened (datetime; older API servers fill only some fields)."""
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp


@dataclass(frozen=True)
class Node:
    """One node of the cluster (kind only: nodes are cluster-scoped)."""

    name: str
    role: str  # "control-plane" or "worker"
    ready: bool
    version: str  # the kubelet's
    images: tuple[str, ...] = ()  # every name of every image the node holds

    @classmethod
    def of(cls, node: Any) -> Node:
        """From a V1Node."""
        labels = node.metadata.labels or {}
        return cls(
            name=node.metadata.name,
            role="control-plane" if CONTROL_PLANE_LABEL in labels else "worker",
            ready=any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            ),
            version=node.status.node_info.kubelet_version,
            images=tuple(name for image in node.status.images or [] for name in image.names or []),
        )


@dataclass(frozen=True)
class Rollout:
    """A Deployment's or StatefulSet's replica counts (missing counts are 0) and whether its
    rollout is complete (`rollout_complete`)."""

    kind: str
    name: str
    desired: int  # spec.replicas (an HPA sets it when the manifest leaves it out)
    replicas: int
    updated: int
    ready: int
    available: int
    complete: bool
    selector: str  # its pods, probe pods excluded (`match_labels_selector`)
    template_annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, workload: Any, kind: str) -> Rollout:
        """From a V1Deployment or V1StatefulSet (`kind` says which)."""
        status = workload.status
        template = workload.spec.template.metadata if workload.spec.template else None
        return cls(
            kind=kind,
            name=workload.metadata.name,
            desired=workload.spec.replicas or 0,
            replicas=status.replicas or 0,
            updated=status.updated_replicas or 0,
            ready=status.ready_replicas or 0,
            available=status.available_replicas or 0,
            complete=rollout_complete(workload, kind),
            selector=match_labels_selector(workload),
            template_annotations=dict((template.annotations if template else None) or {}),
        )


@dataclass(frozen=True)
class RolloutSample:
    """A rollout's counts `t` seconds after sampling began (`NamespaceClient.rollout_timeline`)."""

    COUNTS: ClassVar = ("desired", "replicas", "updated", "ready", "available")

    t: float
    desired: int
    replicas: int
    updated: int
    ready: int
    available: int


def rollout_complete(workload: Any, kind: str) -> bool:
    """The rule `kubectl rollout status` uses: observed, all updated, old ones gone, available."""
    status, desired = workload.status, workload.spec.replicas or 0
    observed = (status.observed_generation or 0) >= (workload.metadata.generation or 0)
    if kind == "StatefulSet":
        revision_done = status.update_revision == status.current_revision
        return observed and revision_done and (status.ready_replicas or 0) == desired
    updated = status.updated_replicas or 0
    return (
        observed
        and updated == desired
        and (status.replicas or 0) == updated
        and (status.available_replicas or 0) == desired
    )


@dataclass(frozen=True)
class Applied:
    """One object server-side applied (`namespace` None: cluster-scoped)."""

    kind: str
    name: str
    namespace: str | None


def pods_of(match_labels: Mapping[str, str]) -> str:
    """The label selector of a workload's pods, from its matchLabels: probe pods excluded
    (a leftover one with `app: backend` would otherwise hold up every wait for the backend)."""
    terms = [f"{key}={value}" for key, value in sorted(match_labels.items())]
    return ",".join([*terms, f"!{PROBE_LABEL}"])


def match_labels_selector(workload: Any) -> str:
    """A Deployment's or StatefulSet's pods (spec.selector.matchLabels) as a label selector."""
    return pods_of(workload.spec.selector.match_labels or {})


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
    """A HorizontalPodAutoscaler's bounds, counts and CPU utilization against its target."""

    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    cpu_utilization: int | None
    cpu_target: int | None


@dataclass(frozen=True)
class NamespaceState:
    """A namespace: its labels, and whether it is being deleted."""

    name: str
    labels: Mapping[str, str]
    terminating: bool = False

    @classmethod
    def of(cls, namespace: Any) -> NamespaceState:
        """From a V1Namespace."""
        meta = namespace.metadata
        return cls(meta.name, dict(meta.labels or {}), meta.deletion_timestamp is not None)


def text_table(rows: Iterable[object]) -> str:
    """Dataclasses as an aligned plain-text table (diagnostics: no pandas on `lab up`'s path)."""
    records = [asdict(row) for row in rows]  # type: ignore[call-overload]
    if not records:
        return "(none)"
    columns = list(records[0])
    cells = [columns, *([str(r[c]) for c in columns] for r in records)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )
