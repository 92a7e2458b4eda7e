"""What the lab reads from the API's objects: dataclasses and the rules on the client's models
(rollout completion, selectors, event times), and manifests as dicts (`documents`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"

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


EVENT_COLUMNS = ["time", "type", "reason", "object", "message", "count"]


def event_time(event: Any) -> Any:
    """When an event last happened (datetime; older API servers fill only some fields)."""
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp


def event_row(event: Any) -> dict[str, Any]:
    obj = event.involved_object
    return {
        "time": event_time(event),
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
    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    cpu_utilization: int | None
    cpu_target: int | None
