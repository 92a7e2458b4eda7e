"""Reading a namespace: pods, events, logs, nodes, HPAs; what blocks a wait; evictions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.k8s.base import NamespaceBase
from lab.k8s.errors import (
    IMAGE_FIX,
    POD_SECURITY_FIX,
    QUOTA_FIX,
    BlockedError,
    api_message,
    in_context,
)
from lab.k8s.frames import pods_frame
from lab.k8s.objects import EVENT_COLUMNS, Eviction, HpaStatus, PodState, event_row, event_time

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# Container states no wait outlives: the kubelet gave up pulling once and backs off, or the
# name is invalid (a first ErrImagePull may be a registry hiccup: it is retried, not fatal).
IMAGE_PROBLEMS = ("ImagePullBackOff", "InvalidImageName")
# How far before a wait's start a Warning event still counts as its cause (client/server clocks).
EVENT_SLACK = timedelta(seconds=5)


class Pods(NamespaceBase):
    """Pods, events and the other objects a lesson reads in its namespace."""

    def pod_states(self, selector: str | None = None) -> list[PodState]:
        """Pods (optionally by label selector), sorted by name."""
        with self._explained("list pods", self.namespace):
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
        frame = pd.DataFrame([event_row(e) for e in self._events()], columns=EVENT_COLUMNS)
        return frame.sort_values("time", key=lambda t: pd.to_datetime(t, utc=True)).tail(limit)

    def _events(self) -> list[Any]:
        with self._explained("list events", self.namespace):
            return list(self.core.list_namespaced_event(self.namespace).items)

    def blocker(self, selector: str | None, since: datetime) -> BlockedError | None:
        """Why the pods matching `selector` cannot come up however long one waits (image not
        pullable, quota used up, Pod Security refusing them), with the last Warning event
        since `since`; None when nothing blocks them."""
        warnings = sorted(
            (
                e
                for e in self._events()
                if e.type == "Warning" and event_time(e) and event_time(e) >= since - EVENT_SLACK
            ),
            key=event_time,
        )

        def last(about: str | None = None) -> str:
            rows = [event_row(e) for e in warnings if about in (None, e.involved_object.name)]
            if not rows:
                return ""
            row = rows[-1]
            return f"\nLast event: {row['reason']} {row['object']}: {row['message']}"

        for pod in self.pod_states(selector):
            if pod.detail in IMAGE_PROBLEMS:
                return BlockedError(
                    f"Pod {pod.name} cannot get its image ({pod.detail}) in "
                    f"{in_context(self.context)}.{last(pod.name)}",
                    IMAGE_FIX,
                )
        for event in reversed(warnings):
            message, owner = event.message or "", event.involved_object
            if event.reason == "FailedCreate" and "exceeded quota" in message:
                return BlockedError(
                    f"In {in_context(self.context)}, {owner.kind}/{owner.name} cannot create its "
                    f"pods: the quota of "
                    f"{self.namespace} is used up.{last(owner.name)}",
                    QUOTA_FIX,
                )
            if event.reason == "FailedCreate" and "violates PodSecurity" in message:
                return BlockedError(
                    f"{owner.kind}/{owner.name} cannot create its pods: Pod Security refuses "
                    f"them.{last(owner.name)}",
                    POD_SECURITY_FIX,
                )
        return None

    def _list_nodes(self) -> list[Any]:
        return list(self.core.list_node().items)

    def nodes(self) -> pd.DataFrame:
        """The cluster's nodes (name, role, ready, kubelet version); kind only: nodes are
        cluster-scoped and a learner's Role on a shared cluster cannot list them."""
        self._cluster_wide("Listing nodes")
        rows = [
            {
                "name": node.metadata.name,
                "role": "control-plane"
                if CONTROL_PLANE_LABEL in (node.metadata.labels or {})
                else "worker",
                "ready": any(
                    c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
                ),
                "version": node.status.node_info.kubelet_version,
            }
            for node in self._list_nodes()
        ]
        return pd.DataFrame(rows, columns=["name", "role", "ready", "version"])

    def logs(self, pod: str, tail: int = 50, container: str | None = None) -> str:
        return str(
            self.core.read_namespaced_pod_log(
                pod, self.namespace, tail_lines=tail, container=container
            )
        )

    def hpa(self, name: str) -> HpaStatus:
        """Current state of a HorizontalPodAutoscaler (CPU utilization when it has one; zero
        counts before the controller's first sync, when it has no status yet)."""
        with self._explained(f"read HorizontalPodAutoscaler/{name}", self.namespace):
            hpa: Any = self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                name, self.namespace
            )
        status: Any = hpa.status or client.V2HorizontalPodAutoscalerStatus(desired_replicas=0)
        current = next(
            (
                m.resource.current.average_utilization
                for m in status.current_metrics or []
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
            status.current_replicas or 0,
            status.desired_replicas or 0,
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
        # .loc with a bool mask: on an empty table `pods[mask]` would select columns instead
        for name in pods.loc[~pods["ready"].astype(bool), "name"]:
            try:
                parts += [f"Last log lines of {name}:", self.logs(name, tail=log_lines)]
            except ApiException as exc:
                parts.append(f"(no logs for {name}: {exc.reason})")
        return "\n".join(parts)

    # --- disruption ---------------------------------------------------------------------------
    def evict(self, pod: str) -> Eviction:
        """Ask for an eviction (honours PodDisruptionBudgets: refused with HTTP 429)."""
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=pod, namespace=self.namespace),
        )
        try:
            with self._explained(f"evict pod {pod}", self.namespace):
                self.core.create_namespaced_pod_eviction(pod, self.namespace, body)
        except ApiException as exc:
            if exc.status != 429:
                raise
            return Eviction(pod, False, 429, api_message(exc))
        return Eviction(pod, True, 201, "evicted")

    def delete_pod(self, pod: str, grace_period_seconds: int | None = None) -> None:
        """Delete a pod (no PDB check: this is what a crash or `kubectl delete pod` does)."""
        self.core.delete_namespaced_pod(
            pod, self.namespace, grace_period_seconds=grace_period_seconds
        )
