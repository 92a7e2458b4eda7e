"""The instructor's Kubernetes calls, behind one small interface.

These are the calls a learner's Role must NOT allow (namespaces by label across the cluster,
Roles, TokenRequests, admission policies). `KubeInstructorApi` makes them through
`lab.k8s.ClusterAdmin` (the one client factory, every failure explained) with the instructor's
kubeconfig; unit tests drive provision/status/teardown with a recording fake of `InstructorApi`,
and the classroom rehearsal drives `KubeInstructorApi` itself against the fake API server.

Apply never forces field ownership (`force_conflicts=False`): provision applies only into
namespaces it has checked are this workshop's, and a field another manager owns there is a
conflict to report, not to take over.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lab.identity import resolve
from lab.k8s import NamespaceState, NotFoundError
from lab.k8s.admin import ClusterAdmin
from lab.manifests import Obj

Namespace = NamespaceState  # a namespace as provision, status and teardown see it


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
    """`InstructorApi` on `lab.k8s.ClusterAdmin`: the instructor's kubeconfig (default:
    $KUBECONFIG or ~/.kube/config) and context (default: its current one), every call
    explained by lab.k8s (unreachable, TLS, 401, 403, 404, 409, 422)."""

    def __init__(self, context: str | None = None, kubeconfig: Path | None = None) -> None:
        identity = resolve(
            "default",
            context,
            kubeconfig=str(kubeconfig) if kubeconfig else None,
            fix="Point KUBECONFIG at the workshop cluster's admin kubeconfig, or pass --context.",
        )
        self.admin = ClusterAdmin.connect(identity)

    def apply(self, objects: Sequence[Obj]) -> None:
        """Server-side apply, never forcing: every kind is resolved first (an API the cluster
        lacks fails before anything is sent), then each object in order."""
        self.admin.apply(objects, field_manager=FIELD_MANAGER, force_conflicts=False)

    def namespace(self, name: str) -> Namespace | None:
        return self.admin.namespace_state(name)

    def namespaces(self, selector: str) -> list[Namespace]:
        return self.admin.namespaces(selector)

    def cluster_objects(self, kind: str, selector: str) -> list[ClusterObject]:
        found = self.admin.cluster_scoped(CLUSTER_KINDS[kind], kind, selector=selector)
        return [ClusterObject(kind, name, labels) for name, labels in found]

    def cluster_object(self, kind: str, name: str) -> ClusterObject | None:
        found = self.admin.cluster_scoped(CLUSTER_KINDS[kind], kind, name=name)
        return ClusterObject(kind, name, found[0][1]) if found else None

    def delete_cluster_object(self, kind: str, name: str) -> None:
        self.admin.delete_cluster_scoped(CLUSTER_KINDS[kind], kind, name)

    def delete_namespace(self, name: str) -> None:
        self.admin.drop_namespace(name)

    def request_token(self, namespace: str, service_account: str, seconds: int) -> Token:
        return Token(*self.admin.request_token(namespace, service_account, seconds))

    def endpoint(self) -> Endpoint:
        configuration = self.admin.api_client.configuration
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
        there = self.admin.in_namespace(namespace)
        if kind in WORKLOADS:
            try:
                rollout = there.rollout(name, kind)
            except NotFoundError:
                return ObjectState(False)
            return ObjectState(True, rollout.ready, rollout.desired)
        return ObjectState(there.exists(API_VERSIONS[kind], kind, name))

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]:
        return self.admin.in_namespace(namespace).config_maps(selector)
