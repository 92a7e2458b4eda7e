"""The instructor's calls beyond one namespace: namespaces by label across the cluster,
cluster-scoped objects (the workshop's admission policy), TokenRequests, other namespaces'
ConfigMaps. A learner's Role must not allow them (`lab.rbac` leaves them out); the workshop
commands make them with the instructor's kubeconfig, explained like every other call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.i18n import N_, _
from lab.k8s.namespace import NamespaceClient
from lab.k8s.objects import NamespaceState

ADMIN_FIX = N_(
    "The workshop commands need a cluster-admin kubeconfig (they create namespaces, Roles and "
    "tokens): use the cluster owner's context (--context)."
)
PROVISION_CONFLICT_FIX = N_(
    "Provision never takes over fields it does not own: find who changed the object "
    "(kubectl get -o yaml --show-managed-fields) and undo that change, or tear the workshop "
    "down and provision it again."
)


class ClusterAdmin(NamespaceClient):
    """A `NamespaceClient` with the instructor's cluster-wide calls; a refusal (403) says the
    kubeconfig needs cluster-admin, a conflict (409) that provision never forces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_steps = {403: _(ADMIN_FIX), 409: _(PROVISION_CONFLICT_FIX)}

    def namespaces(self, selector: str) -> list[NamespaceState]:
        """The namespaces matching a label selector, sorted by name."""
        found: Any = self._call(
            _("list the namespaces labelled {selector}").format(selector=selector),
            lambda: self.core.list_namespace(label_selector=selector),
            None,
        )
        return sorted((NamespaceState.of(n) for n in found.items), key=lambda n: n.name)

    def drop_namespace(self, name: str) -> None:
        """Delete namespace `name` without waiting for it to go (absent: nothing to do)."""
        try:
            self._call(
                _("delete namespace {name}").format(name=name),
                lambda: self.core.delete_namespace(name),
                None,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def cluster_scoped(
        self, api_version: str, kind: str, selector: str | None = None, name: str | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """(name, labels) of the cluster-scoped objects of a kind matching `selector`, or of
        the one named `name` ([] when it does not exist)."""
        resource = self._resource(api_version, kind)
        if name is not None:
            try:
                found = self._call(
                    _("read {kind}/{name}").format(kind=kind, name=name),
                    lambda: resource.get(name=name),
                    None,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return []
                raise
            return [(name, dict(found.metadata.labels or {}))]
        listed = self._call(
            _("list {kind}s").format(kind=kind), lambda: resource.get(label_selector=selector), None
        )
        return [(i.metadata.name, dict(i.metadata.labels or {})) for i in listed.items]

    def delete_cluster_scoped(self, api_version: str, kind: str, name: str) -> None:
        """Delete a cluster-scoped object (absent: nothing to do)."""
        resource = self._resource(api_version, kind)
        try:
            self._call(
                _("delete {kind}/{name}").format(kind=kind, name=name),
                lambda: resource.delete(name=name),
                None,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def request_token(
        self, namespace: str, service_account: str, seconds: int
    ) -> tuple[str, datetime | None]:
        """A token of a ServiceAccount valid `seconds` (TokenRequest): (token, expiry)."""
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        answer: Any = self._call(
            _("request a token for {namespace}/{service_account}").format(
                namespace=namespace, service_account=service_account
            ),
            lambda: self.core.create_namespaced_service_account_token(
                service_account, namespace, body
            ),
            namespace,
        )
        return answer.status.token, answer.status.expiration_timestamp
