"""`NamespaceBase`: one namespace of one cluster, its API groups and the rules every call keeps:
each goes through `_call`, which explains any failure (`lab.k8s.errors.explain`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, Self, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.i18n import _
from lab.identity import Identity
from lab.k8s.client import api_client
from lab.k8s.errors import (
    ApiError,
    ClusterWideError,
    explain,
    handshake_answer,
    in_context,
    transport_error,
)

T = TypeVar("T")
THIS = "<this namespace>"  # `_call`'s default: the call is in this client's namespace


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
        # fixes that replace `explain`'s by HTTP status (the instructor's 403: admin needed)
        self.next_steps: dict[int, str] = {}
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)

    @classmethod
    def connect(cls, identity: Identity) -> Self:
        """The lab's namespace through `api_client(identity)`: context and namespace together."""
        return cls(identity.namespace, api_client(identity), identity.image, identity.shared)

    def in_namespace(self, namespace: str) -> Self:
        """The same cluster and credentials, another namespace (lesson 05's peer namespace)."""
        other = type(self)(namespace, self.api_client, self.probe_image, self.shared)
        other.next_steps = self.next_steps
        return other

    def _call(self, action: str, fn: Callable[[], T], namespace: str | None = THIS) -> T:
        """`fn()`, one API call; an error answer raised as the `ApiError` that explains it:
        this context, `action` ("list pods"), `namespace` (default: this one; None: a
        cluster-scoped object), the fix. (No answer at all is the client's
        `ApiUnreachableError`.)"""
        try:
            return fn()
        except ApiException as exc:
            if isinstance(exc, ApiError) and exc.action is not None:
                raise  # explained already, by the call that made it
            if exc.status == 0 and handshake_answer(exc) is None:  # a websocket got no answer
                host = self.api_client.configuration.host
                raise transport_error(exc, self.context, host) from exc
            where = self.namespace if namespace == THIS else namespace
            raise explain(exc, action, where, self.context, self.next_steps) from exc

    def _resource(self, api_version: str, kind: str) -> Any:
        """The dynamic client's resource of a kind (discovery); a kind this API server does not
        serve is a `LabError` saying so."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._call(
                _("discover {kind} ({api_version})").format(kind=kind, api_version=api_version),
                lambda: self.dynamic.resources.get(api_version=api_version, kind=kind),
                None,
            )
        except ResourceNotFoundError as exc:
            raise LabError(
                _("The API server of {where} does not serve {kind} ({api_version}).").format(
                    where=in_context(self.context), kind=kind, api_version=api_version
                ),
                _(
                    "The lab needs Kubernetes 1.30 or newer (kind >= v0.24 has it; "
                    "ValidatingAdmissionPolicy is GA there): upgrade the cluster, or use one that "
                    "is."
                ),
            ) from exc

    def _cluster_wide(self, what: str) -> None:
        """Refuse `what` on a shared cluster, before any request is made."""
        if self.shared:
            raise ClusterWideError(
                _(
                    "{what} needs rights beyond namespace {namespace}; a learner on a shared "
                    "cluster holds a Role in their own namespace only (lab.rbac lists it)."
                ).format(what=what, namespace=self.namespace),
                _(
                    "This step is for the kind target, where you own the cluster; on a shared "
                    "cluster the instructor can do it for you."
                ),
            )

    @cached_property
    def dynamic(self) -> Any:
        from kubernetes.dynamic import DynamicClient

        return DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
