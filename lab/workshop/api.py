"""The instructor's Kubernetes calls, behind one small interface.

These are the calls a learner's Role must NOT allow (namespaces by label across the cluster,
Roles, TokenRequests, admission policies), so they live here and not in `lab.k8s` (whose calls
`lab.rbac` audits). `KubeInstructorApi` makes them with the official client and the instructor's
kubeconfig; unit tests drive provision/status/teardown with a recording fake of `InstructorApi`,
and the classroom rehearsal drives `KubeInstructorApi` itself against the fake API server.

Apply never forces field ownership (`force_conflicts=False`): provision applies only into
namespaces it has checked are this workshop's, and a field another manager owns there is a
conflict to report, not to take over.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.identity import resolve
from lab.k8s import NamespaceClient, api_client, rollout_row
from lab.manifests import Obj


@dataclass(frozen=True)
class Namespace:
    """A namespace as provision, status and teardown see it."""

    name: str
    labels: Mapping[str, str]
    terminating: bool = False


@dataclass(frozen=True)
class ClusterObject:
    """A cluster-scoped object provision creates besides namespaces (the admission policy)."""

    kind: str
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObjectState:
    """Whether an object exists and, for workloads, how many of its pods are ready."""

    exists: bool
    ready: int = 0
    desired: int = 0

    @property
    def healthy(self) -> bool:
        return self.exists and self.ready >= self.desired


@dataclass(frozen=True)
class Token:
    token: str
    expires: datetime | None


@dataclass(frozen=True)
class Endpoint:
    """How a learner's kubeconfig reaches the API server."""

    server: str
    ca_data: str | None  # base64 PEM, as kubeconfig's certificate-authority-data wants it
    insecure: bool
    tls_server_name: str | None = None  # kubeconfig's tls-server-name (SNI / cert name)
    proxy_url: str | None = None  # kubeconfig's proxy-url


class InstructorApi(Protocol):
    """What provision, status and teardown ask of the cluster."""

    def apply(self, objects: Sequence[Obj]) -> None: ...

    def namespace(self, name: str) -> Namespace | None: ...

    def namespaces(self, selector: str) -> list[Namespace]: ...

    def delete_namespace(self, name: str) -> None: ...

    def cluster_objects(self, kind: str, selector: str) -> list[ClusterObject]: ...

    def cluster_object(self, kind: str, name: str) -> ClusterObject | None: ...

    def delete_cluster_object(self, kind: str, name: str) -> None: ...

    def request_token(self, namespace: str, service_account: str, seconds: int) -> Token: ...

    def endpoint(self) -> Endpoint: ...

    def object_state(self, namespace: str, kind: str, name: str) -> ObjectState: ...

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]: ...


FIELD_MANAGER = "ironclad-lab-workshop"  # the instructor's objects; the lab's own use lab.k8s'
# The cluster-scoped kinds provision creates besides Namespaces (lab.workshop.guard).
CLUSTER_KINDS = {
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1",
}
# What status reads: workloads through lab.k8s (ready/desired), the rest by existence.
WORKLOADS = ("Deployment", "StatefulSet")
API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Secret": "v1",
    "ConfigMap": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}


class KubeInstructorApi:
    """`InstructorApi` on the official client: the instructor's kubeconfig (default: $KUBECONFIG
    or ~/.kube/config) and context (default: its current one)."""

    def __init__(self, context: str | None = None, kubeconfig: Path | None = None) -> None:
        # lab.k8s's client factory: an unreachable API server, TLS, 401 and 403 explained
        identity = resolve(
            "default",
            context,
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            fix="Point KUBECONFIG at the workshop cluster's admin kubeconfig, or pass --context.",
        )
        self.api_client = api_client(identity)
        self.core = client.CoreV1Api(self.api_client)
        self.cluster = NamespaceClient("default", self.api_client)

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.cluster.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as exc:
            raise LabError(
                f"This cluster's API server does not serve {kind} ({api_version}).",
                "The workshop needs Kubernetes 1.30 or newer (ValidatingAdmissionPolicy is GA "
                "there): upgrade the cluster, or use one that is.",
            ) from exc

    def apply(self, objects: Sequence[Obj]) -> None:
        """Server-side apply, never forcing: every kind is resolved first (an API the cluster
        lacks fails before anything is sent), then each object in order."""
        placed = [(obj, self._resource(obj["apiVersion"], obj["kind"])) for obj in objects]
        for obj, resource in placed:
            meta = obj["metadata"]
            try:
                resource_namespace = meta.get("namespace") if resource.namespaced else None
                self.cluster.dynamic.server_side_apply(
                    resource,
                    body=obj,
                    namespace=resource_namespace,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=False,
                )
            except ApiException as exc:
                raise _explained(exc, f"apply {obj['kind']}/{meta['name']}") from exc

    def namespace(self, name: str) -> Namespace | None:
        try:
            found: Any = self.core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _explained(exc, f"read namespace {name}") from exc
        return namespace_of(found.metadata)

    def namespaces(self, selector: str) -> list[Namespace]:
        try:
            items: list[Any] = self.core.list_namespace(label_selector=selector).items
        except ApiException as exc:
            raise _explained(exc, "list the workshop's namespaces") from exc
        return [namespace_of(n.metadata) for n in items]

    def cluster_objects(self, kind: str, selector: str) -> list[ClusterObject]:
        resource = self._resource(CLUSTER_KINDS[kind], kind)
        try:
            items = resource.get(label_selector=selector).items
        except ApiException as exc:
            raise _explained(exc, f"list {kind}s") from exc
        return [ClusterObject(kind, i.metadata.name, dict(i.metadata.labels or {})) for i in items]

    def cluster_object(self, kind: str, name: str) -> ClusterObject | None:
        resource = self._resource(CLUSTER_KINDS[kind], kind)
        try:
            found = resource.get(name=name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _explained(exc, f"read {kind}/{name}") from exc
        return ClusterObject(kind, name, dict(found.metadata.labels or {}))

    def delete_cluster_object(self, kind: str, name: str) -> None:
        resource = self._resource(CLUSTER_KINDS[kind], kind)
        try:
            resource.delete(name=name)
        except ApiException as exc:
            if exc.status != 404:
                raise _explained(exc, f"delete {kind}/{name}") from exc

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise _explained(exc, f"delete namespace {name}") from exc

    def request_token(self, namespace: str, service_account: str, seconds: int) -> Token:
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        try:
            answer: Any = self.core.create_namespaced_service_account_token(
                service_account, namespace, body
            )
        except ApiException as exc:
            raise _explained(exc, f"request a token for {namespace}/{service_account}") from exc
        return Token(answer.status.token, answer.status.expiration_timestamp)

    def endpoint(self) -> Endpoint:
        configuration = self.api_client.configuration
        ca_file = configuration.ssl_ca_cert
        ca_data = base64.b64encode(Path(ca_file).read_bytes()).decode() if ca_file else None
        return Endpoint(
            configuration.host,
            ca_data,
            not configuration.verify_ssl,
            getattr(configuration, "tls_server_name", None) or None,
            configuration.proxy or None,
        )

    def object_state(self, namespace: str, kind: str, name: str) -> ObjectState:
        try:
            if kind in WORKLOADS:
                apps = self.cluster.apps
                read = (
                    apps.read_namespaced_deployment
                    if kind == "Deployment"
                    else apps.read_namespaced_stateful_set
                )
                counts = rollout_row(read(name, namespace))
                return ObjectState(True, counts["ready"], counts["desired"])
            resource = self.cluster.dynamic.resources.get(api_version=API_VERSIONS[kind], kind=kind)
            resource.get(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status == 404:
                return ObjectState(False)
            raise _explained(exc, f"read {kind}/{name} in {namespace}") from exc
        return ObjectState(True)

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]:
        items = self.core.list_namespaced_config_map(namespace, label_selector=selector).items
        return [dict(c.data or {}) for c in items]


def namespace_of(meta: Any) -> Namespace:
    """A V1ObjectMeta of a namespace as a `Namespace`."""
    return Namespace(meta.name, dict(meta.labels or {}), meta.deletion_timestamp is not None)


def _explained(exc: ApiException, doing: str) -> LabError:
    """An API error as one message: 403 names the right the kubeconfig lacks; an expired
    token (401) keeps lab.k8s's explanation, which names the context."""
    if exc.status == 401 and isinstance(exc, LabError):
        return exc
    try:
        message = json.loads(exc.body or "{}").get("message", exc.reason)
    except ValueError:
        message = exc.reason
    if exc.status == 403:
        return LabError(
            f"The API server refused to {doing} (403): {message}",
            "Provisioning needs a cluster-admin kubeconfig (it creates namespaces, Roles and "
            "tokens): use the cluster owner's context (--context).",
        )
    if exc.status == 409:
        return LabError(
            f"Could not {doing}: another field manager owns some of its fields ({message}).",
            "Provision never takes over fields it does not own: find who changed the object "
            "(kubectl get -o yaml --show-managed-fields) and undo that change, or tear the "
            "workshop down and provision it again.",
        )
    return LabError(f"Could not {doing} (HTTP {exc.status}): {message}", "Run the command again.")
