"""The instructor's Kubernetes calls, behind one small interface.

These are the calls a learner's Role must NOT allow (namespaces by label across the cluster,
Roles, TokenRequests), so they live here and not in `lab.k8s` (whose calls `lab.rbac` audits).
`KubeInstructorApi` makes them with the official client and the instructor's kubeconfig;
unit tests drive provision/status/teardown with a recording fake of `InstructorApi`.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.k8s import Cluster, rollout_row
from lab.manifests import Obj


@dataclass(frozen=True)
class Namespace:
    """A namespace as status and teardown see it."""

    name: str
    labels: Mapping[str, str]
    terminating: bool = False


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


class InstructorApi(Protocol):
    """What provision, status and teardown ask of the cluster."""

    def apply(self, objects: Sequence[Obj]) -> None: ...

    def namespaces(self, selector: str) -> list[Namespace]: ...

    def delete_namespace(self, name: str) -> None: ...

    def request_token(self, namespace: str, service_account: str, seconds: int) -> Token: ...

    def endpoint(self) -> Endpoint: ...

    def object_state(self, namespace: str, kind: str, name: str) -> ObjectState: ...

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, str]]: ...


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
        try:
            # KUBECONFIG read now: the client reads it once, when it is imported
            path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or None
            self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context
            )
        except (config.ConfigException, FileNotFoundError) as exc:
            raise LabError(
                f"No kubeconfig for context {context or '(current)'}: {exc}",
                "Point KUBECONFIG at the workshop cluster's admin kubeconfig, or pass --context.",
            ) from exc
        self.core = client.CoreV1Api(self.api_client)
        self.cluster = Cluster("default", self.api_client)

    def apply(self, objects: Sequence[Obj]) -> None:
        try:
            self.cluster.apply(objects)
        except ApiException as exc:
            raise _explained(exc, "apply the workshop's objects") from exc

    def namespaces(self, selector: str) -> list[Namespace]:
        items: list[Any] = self.core.list_namespace(label_selector=selector).items
        return [namespace_of(n.metadata) for n in items]

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
        answer: Any = self.core.create_namespaced_service_account_token(
            service_account, namespace, body
        )
        return Token(answer.status.token, answer.status.expiration_timestamp)

    def endpoint(self) -> Endpoint:
        configuration = self.api_client.configuration
        ca_file = configuration.ssl_ca_cert
        ca_data = base64.b64encode(Path(ca_file).read_bytes()).decode() if ca_file else None
        return Endpoint(configuration.host, ca_data, not configuration.verify_ssl)

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
    """An API error as one message: 403 names the right the kubeconfig lacks."""
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
    return LabError(f"Could not {doing} (HTTP {exc.status}): {message}", "Run the command again.")
