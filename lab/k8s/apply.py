"""Applying and deleting objects (server-side apply), and the waits around them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.i18n import _
from lab.k8s.objects import Applied, documents, pods_of, text_table
from lab.k8s.pods import Pods
from lab.k8s.reads import Reads
from lab.waits import poll

FIELD_MANAGER = "ironclad-lab"


class Applying(Pods, Reads):
    """Server-side apply and delete of manifests, and deleting what a label selects."""

    def apply(
        self,
        source: str | Iterable[Mapping[str, Any]],
        timeout: float = 300.0,
        field_manager: str = FIELD_MANAGER,
        force_conflicts: bool = True,
    ) -> list[Applied]:
        """Server-side apply every object (as `field_manager`); what was applied, in order.

        Idempotent: applying the same objects again changes nothing. A Namespace that is still
        terminating (an earlier teardown) is waited out first: the API server refuses new
        objects in it. On a shared cluster every object must belong in this namespace: anything
        else is refused before the first object is applied. `force_conflicts=False` (the
        instructor's provision) reports a field another manager owns as a `ConflictError`
        instead of taking it over.
        """
        placed = self._placed(documents(source))
        for obj, _resource, _namespace in placed:
            if obj["kind"] == "Namespace" and obj.get("apiVersion") == "v1":
                self.wait_namespace_usable(obj["metadata"]["name"], timeout)
        applied = []
        for obj, resource, namespace in placed:
            name = obj["metadata"]["name"]
            self._call(
                _("apply {kind}/{name}").format(kind=obj["kind"], name=name),
                partial(
                    self.dynamic.server_side_apply,
                    resource,
                    body=obj,
                    namespace=namespace,
                    field_manager=field_manager,
                    force_conflicts=force_conflicts,
                ),
                namespace,
            )
            applied.append(Applied(obj["kind"], name, namespace))
        return applied

    def delete(self, source: str | Iterable[Mapping[str, Any]], timeout: float = 300.0) -> int:
        """Delete these objects (absent ones are skipped) and wait until the pods of their
        workloads are gone; the number deleted. Nothing else in the namespace is touched."""
        placed = self._placed(documents(source))
        deleted = 0
        for obj, resource, namespace in reversed(placed):
            name = obj["metadata"]["name"]
            try:
                self._call(
                    _("delete {kind}/{name}").format(kind=obj["kind"], name=name),
                    partial(
                        self.dynamic.delete,
                        resource,
                        name=name,
                        namespace=namespace,
                        body={"propagationPolicy": "Background"},
                    ),
                    namespace,
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
            lambda: not any(self.pods(s) for s in selectors),
            what=_("the lab's pods in {namespace} to be gone").format(namespace=self.namespace),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: text_table(self.pods()),
        )
        return deleted

    def _placed(
        self, objects: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], Any, str | None]]:
        """(object, API resource, namespace or None if cluster-scoped) for each object; on a
        shared cluster, refuses cluster-scoped objects and other namespaces up front."""
        placed = []
        for obj in objects:
            resource = self._resource(obj["apiVersion"], obj["kind"])
            namespace = None
            if resource.namespaced:
                namespace = obj.get("metadata", {}).get("namespace") or self.namespace
            if namespace != self.namespace:
                kind, name = obj["kind"], obj["metadata"]["name"]
                self._cluster_wide(
                    _("{kind}/{name} in namespace {namespace}").format(
                        kind=kind, name=name, namespace=namespace
                    )
                    if namespace
                    else _("{kind}/{name} (cluster-scoped)").format(kind=kind, name=name)
                )
            placed.append((obj, resource, namespace))
        return placed

    def wait_namespace_usable(self, name: str, timeout: float = 300.0) -> None:
        """Return once namespace `name` is absent or active (not terminating); kind only."""
        self._cluster_wide(_("Reading namespace {name}").format(name=name))

        def usable() -> bool:
            state = self.namespace_state(name)
            return state is None or not state.terminating

        poll(
            usable,
            what=_("namespace {name} to finish terminating").format(name=name),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: text_table(self.in_namespace(name).pods()),
        )

    def wait_api_service(self, name: str, timeout: float = 300.0) -> None:
        """Wait until an aggregated API (e.g. v1beta1.metrics.k8s.io) reports Available; kind
        only (APIServices are cluster-scoped)."""
        self._cluster_wide(_("Reading APIService {name}").format(name=name))
        api = client.ApiregistrationV1Api(self.api_client)

        def conditions() -> list[Any]:
            service: Any = self._call(
                _("read APIService {name}").format(name=name),
                lambda: api.read_api_service(name),
                None,
            )
            return list(service.status.conditions or []) if service.status else []

        poll(
            lambda: any(c.type == "Available" and c.status == "True" for c in conditions()),
            what=_("APIService {name} Available").format(name=name),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: "\n".join(
                f"{c.type}={c.status} {c.reason}: {c.message}" for c in conditions()
            ),
        )

    def delete_labelled(self, api_version: str, kind: str, selector: str) -> list[str]:
        """Delete this namespace's objects of a kind matching a label selector (`lab.reset`
        removes run-time objects so); returns their names, sorted."""
        resource = self._resource(api_version, kind)
        found = self._call(
            _("list {kind} objects labelled {selector}").format(kind=kind, selector=selector),
            lambda: resource.get(namespace=self.namespace, label_selector=selector),
        )
        names = sorted(item.metadata.name for item in found.items)
        for name in names:
            try:
                self._call(
                    _("delete {kind}/{name}").format(kind=kind, name=name),
                    partial(resource.delete, name=name, namespace=self.namespace),
                )
            except ApiException as exc:
                if exc.status != 404:  # already gone: what we wanted
                    raise
        return names

    def delete_namespace(self, timeout: float = 300.0) -> None:
        """Delete this namespace and wait until it is gone (no-op when it does not exist); kind
        only: on a shared cluster the instructor owns the namespace."""
        self._cluster_wide(_("Deleting namespace {namespace}").format(namespace=self.namespace))
        try:
            self._call(
                _("delete namespace {namespace}").format(namespace=self.namespace),
                lambda: self.core.delete_namespace(self.namespace),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        poll(
            lambda: self.namespace_state() is None,
            what=_("namespace {namespace} deleted").format(namespace=self.namespace),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: text_table(self.pods()),
        )
