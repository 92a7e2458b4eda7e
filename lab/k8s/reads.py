"""Reading the namespace's other objects: the namespace itself, Secrets, volume claims."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from lab.i18n import _
from lab.k8s.base import NamespaceBase
from lab.k8s.objects import NamespaceState


class Reads(NamespaceBase):
    """Single objects a lesson or a target reads by name."""

    def namespace_state(self, name: str | None = None) -> NamespaceState | None:
        """Namespace `name` (default: this one), or None when it does not exist. Reading
        another namespace is cluster-wide: refused on a shared cluster."""
        name = name or self.namespace
        if name != self.namespace:
            self._cluster_wide(_("Reading namespace {name}").format(name=name))
        try:
            found = self._call(
                _("read namespace {name}").format(name=name), lambda: self.core.read_namespace(name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return NamespaceState.of(found)

    def secret(self, name: str) -> dict[str, str]:
        """A Secret's data as the API stores it: base64 values (`base64.b64decode` reads them,
        no key needed). `NotFoundError` when there is none."""
        secret: Any = self._call(
            _("read Secret/{name}").format(name=name),
            lambda: self.core.read_namespaced_secret(name, self.namespace),
        )
        return dict(secret.data or {})

    def claim_volume(self, claim: str) -> str | None:
        """The PersistentVolume bound to a PersistentVolumeClaim (None while it is unbound)."""
        found: Any = self._call(
            _("read PersistentVolumeClaim/{claim}").format(claim=claim),
            lambda: self.core.read_namespaced_persistent_volume_claim(claim, self.namespace),
        )
        return found.spec.volume_name or None

    def exists(self, api_version: str, kind: str, name: str) -> bool:
        """Whether this namespace has the object `kind`/`name`."""
        resource = self._resource(api_version, kind)
        try:
            self._call(
                _("read {kind}/{name}").format(kind=kind, name=name),
                lambda: resource.get(name=name, namespace=self.namespace),
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def config_maps(self, selector: str) -> list[dict[str, str]]:
        """The data of this namespace's ConfigMaps matching a label selector."""
        found: Any = self._call(
            _("list ConfigMaps labelled {selector}").format(selector=selector),
            lambda: self.core.list_namespaced_config_map(self.namespace, label_selector=selector),
        )
        return [dict(c.data or {}) for c in found.items]
