"""Reading a namespace: pods, events, logs, nodes, HPAs; what blocks a wait; evictions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.i18n import _
from lab.k8s.base import NamespaceBase
from lab.k8s.errors import (
    IMAGE_FIX,
    POD_SECURITY_FIX,
    QUOTA_FIX,
    BlockedError,
    api_message,
    in_context,
)
from lab.k8s.objects import Event, Eviction, HpaStatus, Node, PodState, event_time, text_table

if TYPE_CHECKING:
    import pandas as pd

# Container states no wait outlives: the kubelet gave up pulling once and backs off, or the
# name is invalid (a first ErrImagePull may be a registry hiccup: it is retried, not fatal).
IMAGE_PROBLEMS = ("ImagePullBackOff", "InvalidImageName")
# How far before a wait's start a Warning event still counts as its cause (client/server clocks).
EVENT_SLACK = timedelta(seconds=5)
EPOCH = datetime.min.replace(tzinfo=UTC)  # sorts an event without a time first


class Pods(NamespaceBase):
    """Pods, events and the other objects a lesson reads in its namespace.

    One type per family: `pods`, `pod` -> `PodState`; `ready_pod_names`, `running_pod_names`
    -> names; `pods_frame` (and every `*_frame`) -> a pandas table for notebooks.
    """

    def _list_pods(self, selector: str | None) -> list[Any]:
        return list(
            self._call(
                _("list pods"),
                lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector),
            ).items
        )

    def pods(self, selector: str | None = None) -> list[PodState]:
        """Pods (optionally by label selector), sorted by name."""
        return sorted((PodState.of(p) for p in self._list_pods(selector)), key=lambda p: p.name)

    def pods_frame(self, selector: str | None = None) -> pd.DataFrame:
        """`pods` as a table, one row per pod."""
        from lab.k8s.frames import pods_frame

        return pods_frame(self.pods(selector))

    def pod(self, name: str) -> PodState:
        """One pod by name (`NotFoundError` when there is none)."""
        found = self._call(
            _("read pod {name}").format(name=name),
            lambda: self.core.read_namespaced_pod(name, self.namespace),
        )
        return PodState.of(found)

    def ready_pod_names(self, selector: str) -> list[str]:
        """Names of the ready, not-terminating pods matching `selector`, sorted (the
        port-forwards call this on every connection)."""
        return [p.name for p in self.pods(selector) if p.ready and not p.deleting]

    def running_pod_names(self, selector: str) -> list[str]:
        """Names of the running, not-terminating pods matching `selector` (ready or not), sorted."""
        return [p.name for p in self.pods(selector) if p.phase == "Running" and not p.deleting]

    def events(self, limit: int = 20) -> list[Event]:
        """The namespace's `limit` most recent events, oldest first."""
        events = sorted((Event.of(e) for e in self._events()), key=lambda e: e.time or EPOCH)
        return events[-limit:] if limit else []

    def events_frame(self, limit: int = 20) -> pd.DataFrame:
        """`events` as a table, one row per event."""
        from lab.k8s.frames import events_frame

        return events_frame(self.events(limit))

    def _events(self) -> list[Any]:
        return list(
            self._call(
                _("list events"), lambda: self.core.list_namespaced_event(self.namespace)
            ).items
        )

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
            events = [Event.of(e) for e in warnings if about in (None, e.involved_object.name)]
            if not events:
                return ""
            event = events[-1]
            return "\n" + _("Last event: {reason} {object}: {message}").format(
                reason=event.reason, object=event.object, message=event.message
            )

        for pod in self.pods(selector):
            if pod.detail in IMAGE_PROBLEMS:
                return BlockedError(
                    _("Pod {pod} cannot get its image ({detail}) in {where}.").format(
                        pod=pod.name, detail=pod.detail, where=in_context(self.context)
                    )
                    + last(pod.name),
                    _(IMAGE_FIX),
                )
        for event in reversed(warnings):
            message, owner = event.message or "", event.involved_object
            if event.reason == "FailedCreate" and "exceeded quota" in message:
                return BlockedError(
                    _(
                        "In {where}, {kind}/{name} cannot create its pods: the quota of "
                        "{namespace} is used up."
                    ).format(
                        where=in_context(self.context),
                        kind=owner.kind,
                        name=owner.name,
                        namespace=self.namespace,
                    )
                    + last(owner.name),
                    _(QUOTA_FIX),
                )
            if event.reason == "FailedCreate" and "violates PodSecurity" in message:
                return BlockedError(
                    _("{kind}/{name} cannot create its pods: Pod Security refuses them.").format(
                        kind=owner.kind, name=owner.name
                    )
                    + last(owner.name),
                    _(POD_SECURITY_FIX),
                )
        return None

    def nodes(self) -> list[Node]:
        """The cluster's nodes, sorted by name; kind only: nodes are cluster-scoped and a
        learner's Role on a shared cluster cannot list them."""
        self._cluster_wide(_("Listing nodes"))
        items = self._call(_("list nodes"), lambda: self.core.list_node().items)
        return sorted((Node.of(n) for n in items), key=lambda n: n.name)

    def nodes_frame(self) -> pd.DataFrame:
        """`nodes` as a table (name, role, ready, kubelet version)."""
        from lab.k8s.frames import nodes_frame

        return nodes_frame(self.nodes())

    def logs(
        self, pod: str, tail: int = 50, container: str | None = None, previous: bool = False
    ) -> str:
        """The last `tail` lines of a pod's log (of `container`, when it has several; with
        `previous`, of the container's run before its last restart: `kubectl logs --previous`)."""
        return str(
            self._call(
                _("read the log of pod {pod}").format(pod=pod),
                lambda: self.core.read_namespaced_pod_log(
                    pod, self.namespace, tail_lines=tail, container=container, previous=previous
                ),
            )
        )

    def follow_log(self, pod: str) -> Iterator[str]:
        """A pod's log line by line as it is written, from its start until its container ends
        (`kubectl logs -f`)."""
        response: Any = self._call(  # urllib3's response: _preload_content=False
            _("follow the log of pod {pod}").format(pod=pod),
            lambda: self.core.read_namespaced_pod_log(
                pod, self.namespace, follow=True, _preload_content=False
            ),
        )
        try:
            rest = b""
            for chunk in response.stream(1 << 16):
                *lines, rest = (rest + chunk).split(b"\n")
                yield from (line.decode(errors="replace") for line in lines)
            if rest:
                yield rest.decode(errors="replace")
        finally:
            response.release_conn()

    def hpa(self, name: str) -> HpaStatus:
        """Current state of a HorizontalPodAutoscaler (CPU utilization when it has one; zero
        counts before the controller's first sync, when it has no status yet)."""
        hpa: Any = self._call(
            _("read HorizontalPodAutoscaler/{name}").format(name=name),
            lambda: self.autoscaling.read_namespaced_horizontal_pod_autoscaler(
                name, self.namespace
            ),
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
        parts = [_("Pods:"), text_table(pods), _("Recent events:"), text_table(self.events(10))]
        for pod in pods:
            if pod.ready:
                continue
            try:
                parts += [
                    _("Last log lines of {pod}:").format(pod=pod.name),
                    self.logs(pod.name, tail=log_lines),
                ]
            except ApiException as exc:
                parts.append(
                    _("(no logs for {pod}: {reason})").format(pod=pod.name, reason=exc.reason)
                )
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
            self._call(
                _("evict pod {pod}").format(pod=pod),
                lambda: self.core.create_namespaced_pod_eviction(pod, self.namespace, body),
            )
        except ApiException as exc:
            if exc.status != 429:
                raise
            return Eviction(pod, False, 429, api_message(exc))
        return Eviction(pod, True, 201, "evicted")

    def delete_pod(self, pod: str, grace_period_seconds: int | None = None) -> None:
        """Delete a pod (no PDB check: this is what a crash or `kubectl delete pod` does)."""
        self._call(
            _("delete pod {pod}").format(pod=pod),
            lambda: self.core.delete_namespaced_pod(
                pod, self.namespace, grace_period_seconds=grace_period_seconds
            ),
        )

    def create_pod(self, pod: client.V1Pod, dry_run: bool = False, what: str = "pod") -> PodState:
        """Create a pod (`dry_run`: the API server admits and validates it, stores nothing);
        a refusal (Pod Security, quota, RBAC) is the `ForbiddenError` naming it."""
        name = pod.metadata.name if pod.metadata else "?"
        created = self._call(
            (_("create {what} {name} (dry run)") if dry_run else _("create {what} {name}")).format(
                what=what, name=name
            ),
            lambda: self.core.create_namespaced_pod(
                self.namespace, pod, dry_run="All" if dry_run else None
            ),
        )
        return PodState.of(created)
