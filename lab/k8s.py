"""Kubernetes helpers for one namespace, on the official client: apply, waits, pods, evictions.

Over 400 lines on purpose: every Kubernetes API call the lab makes lives in this one module
(`Cluster`), so the verbs and resources a learner's Role must grant are audited in one place
(`lab.rbac` lists them; a recording test keeps the two equal).
Pods are `PodState` dataclasses at the core; `pods()` / `pods_frame()` give notebooks a table.

A `Cluster(..., shared=True)` is a learner's namespace on a shared cluster: whatever needs more
than that namespace (nodes, Namespaces, APIServices, kube-system, other namespaces' objects)
raises `ClusterWideError` before any request, and the API's refusals (403 RBAC, quota, Pod
Security) and waits that cannot succeed (ImagePullBackOff, quota, Pod Security) become one
`LabError` naming the cause, what to do, and the last event.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pandas as pd
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.identity import Identity
from lab.waits import poll

FIELD_MANAGER = "ironclad-lab"
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# Container states no wait outlives: the kubelet gave up pulling once and backs off, or the
# name is invalid (a first ErrImagePull may be a registry hiccup: it is retried, not fatal).
IMAGE_PROBLEMS = ("ImagePullBackOff", "InvalidImageName")
# How far before a wait's start a Warning event still counts as its cause (client/server clocks).
EVENT_SLACK = timedelta(seconds=5)
QUOTA_FIX = (
    "Free room in the namespace (ironclad-lab down, or delete leftover objects), or ask the "
    "instructor to raise its ResourceQuota (ironclad-lab workshop provision sizes it)."
)
IMAGE_FIX = (
    "Check the image name in the event. On a shared cluster the backend image comes from a "
    "registry (nothing is published from this repository): push backend/Dockerfile's image "
    "where the cluster can pull it and pass --image REF. On kind, `ironclad-lab up --target "
    "kind` loads it; offline, `ironclad-lab images load --archive FILE`."
)
POD_SECURITY_FIX = (
    "The lab's pods meet Pod Security 'restricted'; a change of yours (or a policy of the "
    "cluster) does not: compare the pod spec with lab.lint's namespace-restricted rules."
)


class ClusterWideError(LabError):
    """A call that needs more than one namespace, on a shared cluster where the learner's Role
    grants only their namespace."""


class ForbiddenError(ApiException, LabError):
    """The API server refused a call (HTTP 401/403: credentials, RBAC, quota, Pod Security).

    Still the `ApiException` it was (status, reason, body: code that checks them keeps
    working) and a `LabError` whose message names the context, the cause and the fix.
    """

    def __init__(self, problem: str, next_step: str, refused: ApiException | None = None) -> None:
        ApiException.__init__(
            self,
            getattr(refused, "status", None),
            getattr(refused, "reason", None),
            body=getattr(refused, "body", None),
        )
        self.headers = getattr(refused, "headers", None)
        LabError.__init__(self, problem, next_step)

    def __str__(self) -> str:
        return Exception.__str__(self)  # LabError's "problem → next step", not ApiException's


class ApiUnreachableError(LabError):
    """No answer from the API server: nothing listens, the network is down, or TLS failed."""


class BlockedError(LabError):
    """A wait that cannot succeed by waiting: image not pullable, quota exceeded, Pod Security."""


# kube-apiserver's RBAC refusal: 'pods is forbidden: User "u" cannot list resource "pods" in API
# group "" in the namespace "ns"' (the group and namespace parts are absent when they are empty).
RBAC_REFUSAL = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]+)")?'
)
TLS_DETAIL = re.compile(r"certificate verify failed[^')\]\n]*|hostname mismatch[^')\]\n]*")


def _where(context: str | None) -> str:
    return f"context {context}" if context else "the cluster"


def api_error(
    exc: ApiException, action: str | None, namespace: str | None, context: str | None = None
) -> ForbiddenError:
    """A refusal (401/403) as one message: the context, what was refused, why, and the fix."""
    message = _api_message(exc)
    where = _where(context)
    doing = action or "do this"
    if exc.status == 401:
        return ForbiddenError(
            f"The API server of {where} did not accept your credentials (401 Unauthorized, "
            f"trying to {doing}): the token expired or was revoked.",
            "Ask the instructor for a fresh kubeconfig (ironclad-lab workshop provision issues "
            "tokens that expire), or check KUBECONFIG and --context.",
            exc,
        )
    if "exceeded quota" in message:
        return ForbiddenError(
            f"In {where}, cannot {doing}: the quota of {namespace or 'the namespace'} is used up "
            f"({message}).",
            QUOTA_FIX,
            exc,
        )
    if "violates PodSecurity" in message:
        return ForbiddenError(f"In {where}, cannot {doing}: {message}.", POD_SECURITY_FIX, exc)
    rbac = RBAC_REFUSAL.search(message)
    if rbac:
        group = f" (API group {rbac['group']})" if rbac["group"] else ""
        in_namespace = rbac["namespace"] or namespace
        scope = f"in namespace {in_namespace}" if in_namespace else "cluster-wide"
        refused = f"{rbac['verb']} {rbac['resource']}{group} {scope}"
        problem = (
            f"In {where}, the API server refused to {doing}: {rbac['user']} may not {refused} "
            "(403 Forbidden)."
        )
    else:
        problem = (
            f"In {where}, the API server refused to {doing} in namespace {namespace or '?'} "
            f"({exc.status}: {message})."
        )
    return ForbiddenError(
        problem,
        "Check --context and --namespace (kubectl config get-contexts); on a shared cluster a "
        "learner's Role grants exactly what lab.rbac lists, in their own namespace: ask the "
        "instructor to re-run ironclad-lab workshop provision.",
        exc,
    )


def transport_error(exc: BaseException, context: str | None, server: str) -> ApiUnreachableError:
    """A request that got no HTTP answer (connection refused, unknown name, timeout, TLS) as one
    message naming the context, the server and the fix."""
    where = _where(context)
    reason = getattr(exc, "reason", None)
    chain = [exc, reason, getattr(reason, "__cause__", None), exc.__cause__]
    text = " ".join(str(e) for e in chain if e is not None)
    if any(isinstance(e, urllib3.exceptions.SSLError) for e in chain) or "SSLError" in text:
        detail = TLS_DETAIL.search(text)
        return ApiUnreachableError(
            f"TLS to the API server of {where} ({server}) failed: "
            f"{detail[0] if detail else 'its certificate is not trusted'}.",
            "The kubeconfig's certificate-authority does not match this server (a re-created "
            "cluster, or another cluster's kubeconfig): get a fresh one (kind: kind export "
            "kubeconfig --name ironclad; a workshop: ask the instructor).",
        )
    if "refused" in text.lower():
        cause = "connection refused"
    elif "Name or service not known" in text or "NameResolution" in text:
        cause = "its name does not resolve"
    elif "timed out" in text or "Timeout" in text:
        cause = "timed out"
    else:
        cause = type(reason or exc).__name__
    return ApiUnreachableError(
        f"The API server of {where} ({server}) does not answer ({cause}).",
        "On kind: is Docker running and the cluster up (docker ps; ironclad-lab up --target "
        "kind)? On a shared cluster: check your network or VPN and the server in your kubeconfig "
        f"(kubectl --context {context or '<context>'} cluster-info).",
    )


class ExplainingApiClient(client.ApiClient):
    """The ApiClient `Cluster.connect` builds: its failures explain themselves. No answer at all
    raises `ApiUnreachableError`, a 401/403 `ForbiddenError` (both name the context)."""

    def __init__(self, configuration: client.Configuration, context: str) -> None:
        super().__init__(configuration)
        self.context = context

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().call_api(*args, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise transport_error(exc, self.context, self.configuration.host) from exc
        except ApiException as exc:
            if exc.status == 0:  # the REST layer's wrapping of a TLS failure
                raise transport_error(exc, self.context, self.configuration.host) from exc
            raise

    def response_deserialize(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().response_deserialize(*args, **kwargs)
        except ApiException as exc:
            if exc.status in (401, 403) and not isinstance(exc, ForbiddenError):
                raise api_error(exc, None, None, self.context) from exc
            raise


def api_client(identity: Identity) -> ExplainingApiClient:
    """The one factory of the lab's Kubernetes clients: `identity`'s kubeconfig and context,
    answering with explained errors (`ExplainingApiClient`)."""
    fix = (
        "Point KUBECONFIG at the kubeconfig your instructor gave you, and pass --context with "
        "one of its contexts (kubectl config get-contexts)."
        if identity.shared
        else "Check KUBECONFIG and --context (kubectl config get-contexts); for the kind lab: "
        "ironclad-lab up --target kind."
    )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=identity.kubeconfig,
            context=identity.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, FileNotFoundError, OSError) as exc:
        raise LabError(
            f"No kubeconfig for context {identity.context} ({identity.kubeconfig}): {exc}", fix
        ) from exc
    return ExplainingApiClient(configuration, identity.context)


@contextmanager
def explained(action: str, namespace: str, context: str | None = None) -> Iterator[None]:
    """Turn the API's refusals (401/403) inside the block into `api_error` messages naming
    `action` (the dynamic client re-wraps what `ExplainingApiClient` explained)."""
    try:
        yield
    except ApiException as exc:
        if exc.status in (401, 403):
            raise api_error(exc, action, namespace, context) from exc
        raise


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


# The label every probe pod carries (its name as the value). A probe may borrow a workload's
# labels (`app: backend`) to test a NetworkPolicy, so a workload's pods exclude it (`pods_of`).
PROBE_LABEL = "lab-probe"


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


class Cluster:
    """One namespace of one cluster, through the official Python client."""

    def __init__(
        self,
        namespace: str,
        api_client: client.ApiClient,
        probe_image: str | None = None,
        shared: bool = False,
    ) -> None:
        self.namespace = namespace
        self.api_client = api_client
        # the kubeconfig context, for messages (a client built outside `connect` has none)
        self.context: str | None = getattr(api_client, "context", None)
        self.probe_image = probe_image  # what `probe()` runs (the backend image)
        self.shared = shared  # a learner's namespace on a shared cluster: nothing beyond it
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)

    @classmethod
    def connect(cls, identity: Identity) -> Cluster:
        """The lab's namespace through `api_client(identity)`: context and namespace together."""
        return cls(identity.namespace, api_client(identity), identity.image, identity.shared)

    def in_namespace(self, namespace: str) -> Cluster:
        """The same cluster and credentials, another namespace (lesson 05's peer namespace)."""
        return Cluster(namespace, self.api_client, self.probe_image, self.shared)

    def _explained(self, action: str, namespace: str) -> Any:
        """`explained` with this cluster's context."""
        return explained(action, namespace, self.context)

    def _cluster_wide(self, what: str) -> None:
        """Refuse `what` on a shared cluster, before any request is made."""
        if self.shared:
            raise ClusterWideError(
                f"{what} needs rights beyond namespace {self.namespace}; a learner on a shared "
                "cluster holds a Role in their own namespace only (lab.rbac lists it).",
                "This step is for the kind target, where you own the cluster; on a shared "
                "cluster the instructor can do it for you.",
            )

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
        objects in it. On a shared cluster every object must belong in this namespace: anything
        else is refused before the first object is applied.
        """
        placed = self._placed(documents(source))
        for obj, _, _ in placed:
            if obj["kind"] == "Namespace" and obj.get("apiVersion") == "v1":
                self.wait_namespace_usable(obj["metadata"]["name"], timeout)
        rows = []
        for obj, resource, namespace in placed:
            name = obj["metadata"]["name"]
            with self._explained(f"apply {obj['kind']}/{name}", namespace or self.namespace):
                self.dynamic.server_side_apply(
                    resource,
                    body=obj,
                    namespace=namespace,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                )
            rows.append({"kind": obj["kind"], "name": name, "namespace": namespace})
        return pd.DataFrame(rows, columns=["kind", "name", "namespace"])

    def delete(self, source: str | Iterable[Mapping[str, Any]], timeout: float = 300.0) -> int:
        """Delete these objects (absent ones are skipped) and wait until the pods of their
        workloads are gone; the number deleted. Nothing else in the namespace is touched."""
        placed = self._placed(documents(source))
        deleted = 0
        for obj, resource, namespace in reversed(placed):
            name = obj["metadata"]["name"]
            try:
                with self._explained(f"delete {obj['kind']}/{name}", namespace or self.namespace):
                    self.dynamic.delete(
                        resource,
                        name=name,
                        namespace=namespace,
                        body={"propagationPolicy": "Background"},
                    )
                deleted += 1
            except ApiException as exc:
                if exc.status != 404:
                    raise
        selectors = [
            pods_of(labels)
            for obj, _, _ in placed
            if (labels := obj.get("spec", {}).get("selector", {}).get("matchLabels"))
            and "template" in obj.get("spec", {})
        ]
        poll(
            lambda: not any(self.pod_states(s) for s in selectors),
            what=f"the lab's pods in {self.namespace} to be gone",
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: self.pods().to_string(index=False),
        )
        return deleted

    def _placed(
        self, objects: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], Any, str | None]]:
        """(object, API resource, namespace or None if cluster-scoped) for each object; on a
        shared cluster, refuses cluster-scoped objects and other namespaces up front."""
        placed = []
        for obj in objects:
            resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            namespace = None
            if resource.namespaced:
                namespace = obj.get("metadata", {}).get("namespace") or self.namespace
            if namespace != self.namespace:
                self._cluster_wide(
                    f"{obj['kind']}/{obj['metadata']['name']} "
                    + (f"in namespace {namespace}" if namespace else "(cluster-scoped)")
                )
            placed.append((obj, resource, namespace))
        return placed

    def wait_namespace_usable(self, name: str, timeout: float = 300.0) -> None:
        """Return once namespace `name` is absent or active (not terminating); kind only."""
        self._cluster_wide(f"Reading namespace {name}")

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
        """Wait until an aggregated API (e.g. v1beta1.metrics.k8s.io) reports Available; kind
        only (APIServices are cluster-scoped)."""
        self._cluster_wide(f"Reading APIService {name}")
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
                    f"{_where(self.context)}.{last(pod.name)}",
                    IMAGE_FIX,
                )
        for event in reversed(warnings):
            message, owner = event.message or "", event.involved_object
            if event.reason == "FailedCreate" and "exceeded quota" in message:
                return BlockedError(
                    f"In {_where(self.context)}, {owner.kind}/{owner.name} cannot create its "
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

    # --- rollouts -----------------------------------------------------------------------------
    def _workload(self, name: str, kind: str) -> Any:
        workload: Any
        readers = {
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "Deployment": self.apps.read_namespaced_deployment,
        }
        if kind not in readers:
            raise LabError(
                f"Cannot follow a rollout of kind {kind}.", "Use Deployment or StatefulSet."
            )
        with self._explained(f"read {kind}/{name}", self.namespace):
            workload = readers[kind](name, self.namespace)
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
        `selector` defaults to the workload's own matchLabels. What waiting cannot fix (an image
        that cannot be pulled, the quota, Pod Security) fails at once (`blocker`).
        """
        pods = selector
        since = datetime.now(UTC)

        def done() -> dict[str, Any] | None:
            nonlocal pods
            workload = self._workload(name, kind)
            pods = pods or match_labels_selector(workload)
            counts = rollout_row(workload)
            if not rollout_complete(workload) or len(self.ready_pods(pods)) < counts["desired"]:
                if blocked := self.blocker(pods, since):
                    raise blocked
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
            with self._explained(f"evict pod {pod}", self.namespace):
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
        with self._explained(f"list {kind} objects labelled {selector}", self.namespace):
            found = resource.get(namespace=self.namespace, label_selector=selector)
        names = sorted(item.metadata.name for item in found.items)
        for name in names:
            try:
                with self._explained(f"delete {kind}/{name}", self.namespace):
                    resource.delete(name=name, namespace=self.namespace)
            except ApiException as exc:
                if exc.status != 404:  # already gone: what we wanted
                    raise
        return names

    def delete_namespace(self, timeout: float = 300.0) -> None:
        """Delete this namespace and wait until it is gone (no-op when it does not exist); kind
        only: on a shared cluster the instructor owns the namespace."""
        self._cluster_wide(f"Deleting namespace {self.namespace}")
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
        with self._explained(f"create probe pod {name}", self.namespace):
            self.core.create_namespaced_pod(self.namespace, probe_pod(name, url, labels, image))
        try:
            phase = poll(
                lambda: self._finished_phase(name),
                what=f"probe pod {name}",
                timeout=timeout,
                interval=0.5,
                progress=False,
                diagnose=lambda: self.diagnose(f"{PROBE_LABEL}={name}"),
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
        metadata=client.V1ObjectMeta(name=name, labels={**labels, PROBE_LABEL: name}),
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
