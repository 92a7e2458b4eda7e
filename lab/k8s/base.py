"""`NamespaceBase`: one namespace of one cluster, its API groups and the rules every call keeps."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Self

from kubernetes import client

from lab.identity import Identity
from lab.k8s.client import api_client, explained
from lab.k8s.errors import ClusterWideError


class NamespaceBase:
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
    def connect(cls, identity: Identity) -> Self:
        """The lab's namespace through `api_client(identity)`: context and namespace together."""
        return cls(identity.namespace, api_client(identity), identity.image, identity.shared)

    def in_namespace(self, namespace: str) -> Self:
        """The same cluster and credentials, another namespace (lesson 05's peer namespace)."""
        return type(self)(namespace, self.api_client, self.probe_image, self.shared)

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
