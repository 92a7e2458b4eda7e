"""A learner's share of the cluster: the lab's measured footprint, its quota and limits.

The footprint is read from the rendered manifests, never from a hand-kept table: every
container's requests and limits, times the pods its workload can have at most — the HPA's
maxReplicas for the Deployment it scales (else spec.replicas, default 1), plus the rolling
update's maxSurge (lesson 04 restarts the backend) — plus `PROBE_PODS` probe/exercise pods of
`lab.k8s.probe_pod`'s size (lesson 05's NetworkPolicy probes and the capability probes run one
at a time; two leave room for one still terminating) and one load-generator pod
(`lab.loadgen`: lesson 04's load through the Service, which runs during the rolling update).
The ResourceQuota is that total; the peer namespace gets room for the probe pods only.
Scheduling counts requests, so the number of learners a node holds is its allocatable CPU
(memory) over the footprint's requests, the smaller of the two, at the HPA's maximum (worst
case: every learner loads at once) and at its minimum (a class that is reading, not loading).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.utils.quantity import parse_quantity

from lab.i18n import _
from lab.k8s import probe_pod
from lab.loadgen import job_manifest
from lab.manifests import Obj
from lab.pod_templates import pods

PROBE_PODS = 2
MI = Decimal(1024**2)


@dataclass(frozen=True)
class Footprint:
    """CPU in millicores, memory in MiB, pods and PersistentVolumeClaims (storage in GiB)."""

    requests_cpu_m: int
    requests_memory_mi: int
    limits_cpu_m: int
    limits_memory_mi: int
    pods: int
    pvcs: int = 0
    storage_gi: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))

    def times(self, count: int) -> Footprint:
        return Footprint(*(value * count for value in _values(self)))

    def quota_hard(self) -> dict[str, str]:
        """The ResourceQuota `spec.hard` that admits exactly this footprint."""
        hard = {
            "requests.cpu": f"{self.requests_cpu_m}m",
            "requests.memory": f"{self.requests_memory_mi}Mi",
            "limits.cpu": f"{self.limits_cpu_m}m",
            "limits.memory": f"{self.limits_memory_mi}Mi",
            "pods": str(self.pods),
            "persistentvolumeclaims": str(self.pvcs),
        }
        if self.storage_gi:
            hard["requests.storage"] = f"{self.storage_gi}Gi"
        return hard


def _values(footprint: Footprint) -> tuple[int, ...]:
    return (
        footprint.requests_cpu_m,
        footprint.requests_memory_mi,
        footprint.limits_cpu_m,
        footprint.limits_memory_mi,
        footprint.pods,
        footprint.pvcs,
        footprint.storage_gi,
    )


def quantity(value: str) -> Decimal:
    """A Kubernetes quantity ("100m", "1Gi") as a number, by the client's own parser."""
    return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]


def _cpu_m(value: str | None) -> int:
    return math.ceil(quantity(value) * 1000) if value else 0


def _memory_mi(value: str | None) -> int:
    return math.ceil(quantity(value) / MI) if value else 0


def pod_footprint(spec: Mapping[str, Any]) -> Footprint:
    """One pod's requests and limits: its containers summed (init containers run before them,
    so the larger of their maximum and that sum counts, as the scheduler does)."""

    def of(containers: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, int, int]]:
        rows = []
        for container in containers:
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            rows.append(
                (
                    _cpu_m(requests.get("cpu")),
                    _memory_mi(requests.get("memory")),
                    _cpu_m(limits.get("cpu")),
                    _memory_mi(limits.get("memory")),
                )
            )
        return rows

    main = [sum(column) for column in zip(*of(spec.get("containers", [])), strict=True)]
    init = of(spec.get("initContainers", []))
    cpu, memory, cpu_limit, memory_limit = (
        max([m, *(row[i] for row in init)]) for i, m in enumerate(main or [0, 0, 0, 0])
    )
    return Footprint(cpu, memory, cpu_limit, memory_limit, pods=1)


def hpa_of(workload: Obj, objects: Sequence[Obj]) -> Obj | None:
    """The HorizontalPodAutoscaler in `objects` that scales `workload`, if any."""
    return next(
        (
            o
            for o in objects
            if o["kind"] == "HorizontalPodAutoscaler"
            and o["spec"]["scaleTargetRef"]["kind"] == workload["kind"]
            and o["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
        ),
        None,
    )


def max_pods(workload: Obj, objects: Sequence[Obj]) -> int:
    """The most pods `workload` can have at once: HPA maxReplicas (else spec.replicas, else 1)
    plus a Deployment's rolling-update maxSurge."""
    kind = workload["kind"]
    hpa = hpa_of(workload, objects)
    replicas = int(hpa["spec"]["maxReplicas"] if hpa else workload["spec"].get("replicas", 1))
    strategy = workload["spec"].get("strategy") or {}
    surge: int | str = 0
    if kind == "Deployment" and strategy.get("type", "RollingUpdate") == "RollingUpdate":
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str):  # a percentage rounds up (Kubernetes rounds maxSurge up)
        surge = math.ceil(replicas * int(surge.rstrip("%")) / 100)
    return replicas + surge


def _storage(workload: Obj) -> tuple[int, int]:
    """(claims, GiB) of a StatefulSet's volumeClaimTemplates, per replica."""
    claims = workload["spec"].get("volumeClaimTemplates") or []
    gib = sum(
        math.ceil(quantity(c["spec"]["resources"]["requests"]["storage"]) / 1024**3) for c in claims
    )
    return len(claims), gib


def probe_footprint() -> Footprint:
    """`PROBE_PODS` probe pods as `lab.k8s.probe_pod` sizes them."""
    pod = ApiClient().sanitize_for_serialization(probe_pod("probe", "http://x", {}, "image"))  # type: ignore[no-untyped-call]
    return pod_footprint(pod["spec"]).times(PROBE_PODS)


def loadgen_footprint() -> Footprint:
    """One load-generator pod, as `lab.loadgen.job_manifest` sizes it (one load at a time)."""
    job = job_manifest("loadgen", "image", rate=1, requests=1)
    return pod_footprint(job["spec"]["template"]["spec"])


def learner_footprint(objects: Sequence[Obj]) -> Footprint:
    """The learner's stack at its largest (see the module docstring), probe pods and the
    load generator included, and lesson 08's backup add-on: its claim, and one pod of its
    CronJob's Job template (the CronJob forbids concurrent runs; the lesson runs its backup,
    disaster and restore Jobs one after the other)."""
    total = probe_footprint() + loadgen_footprint()
    for pod in pods(objects):
        count = max_pods(pod.workload, objects)
        claims, gib = _storage(pod.workload)
        per_pod = replace(pod_footprint(pod.spec), pvcs=claims, storage_gi=gib)
        total += per_pod.times(count)
    for obj in objects:
        if obj["kind"] == "PersistentVolumeClaim":
            storage = quantity(obj["spec"]["resources"]["requests"]["storage"])
            total += Footprint(0, 0, 0, 0, 0, pvcs=1, storage_gi=math.ceil(storage / 1024**3))
        elif obj["kind"] == "CronJob":
            total += pod_footprint(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return total


def steady_footprint(objects: Sequence[Obj]) -> Footprint:
    """The stack's requests at rest: HPA minReplicas, no surge, no probe pods."""
    total = Footprint(0, 0, 0, 0, 0)
    for pod in pods(objects):
        workload = pod.workload
        hpa = hpa_of(workload, objects)
        replicas = int(
            hpa["spec"].get("minReplicas", 1) if hpa else workload["spec"].get("replicas", 1)
        )
        total += pod_footprint(pod.spec).times(replicas)
    return total


def learners_per_node(footprint: Footprint, cpu: float, memory_gib: float) -> int:
    """How many learners' `footprint.requests` a node of `cpu` cores and `memory_gib` GiB
    allocatable holds (the scheduler counts requests)."""
    by_cpu = int(cpu * 1000) // max(footprint.requests_cpu_m, 1)
    by_memory = int(memory_gib * 1024) // max(footprint.requests_memory_mi, 1)
    return min(by_cpu, by_memory)


def largest_container(objects: Sequence[Obj]) -> dict[str, str]:
    """The largest CPU and memory limits of any container in `objects`' workloads: the
    LimitRange's per-container max (nothing the lab runs is refused, nothing larger admitted)."""
    sizes = [
        pod_footprint({"containers": [c]})
        for pod in pods(objects)
        for c in pod.spec.get("containers", [])
    ]
    cpu = max((s.limits_cpu_m for s in sizes), default=1000)
    memory = max((s.limits_memory_mi for s in sizes), default=1024)
    return {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}


NODE_SIZES = ((4, 16), (8, 32), (16, 64))  # (CPU, GiB) of common nodes, for `capacity_lines`


def capacity_lines(peak: Footprint, at_rest: Footprint) -> list[str]:
    """The arithmetic in words: each learner's quota, and how many learners common node sizes
    hold at the HPA's maximum and at rest."""
    lines = [
        _(
            "per learner at most: requests {cpu}m CPU / {memory}Mi, limits {cpu_limit}m / "
            "{memory_limit}Mi, {pods} pods (HPA max + rolling surge + {probes} probe pods + the "
            "load generator)"
        ).format(
            cpu=peak.requests_cpu_m,
            memory=peak.requests_memory_mi,
            cpu_limit=peak.limits_cpu_m,
            memory_limit=peak.limits_memory_mi,
            pods=peak.pods,
            probes=PROBE_PODS,
        ),
        _("per learner at rest: requests {cpu}m CPU / {memory}Mi, {pods} pods").format(
            cpu=at_rest.requests_cpu_m, memory=at_rest.requests_memory_mi, pods=at_rest.pods
        ),
    ]
    node = _(
        "a node with {cpu} CPU / {memory} GiB allocatable holds {at_most} learners at their "
        "maximum, {at_rest} at rest"
    )
    lines += [
        node.format(
            cpu=cpu,
            memory=memory,
            at_most=learners_per_node(peak, cpu, memory),
            at_rest=learners_per_node(at_rest, cpu, memory),
        )
        for cpu, memory in NODE_SIZES
    ]
    return lines
