"""The `cluster` target: a learner's namespace on an existing (shared) cluster.

The cluster comes from the kubeconfig (KUBECONFIG or ~/.kube/config, `--context`); the lab never
creates or deletes clusters or namespaces and touches no namespace but its own: it server-side
applies `render("cluster")` (nothing cluster-scoped) into the namespace the instructor
provisioned, forwards ports like kind, and on exit deletes exactly the objects it applied (or
keeps them, `--keep`). Every call it makes is in `lab.rbac`, the learner Role.

The backend image is pulled by the cluster from a registry: no image is published from this
repository, so the instructor builds backend/Dockerfile, pushes it where the cluster can pull,
and hands out the reference (`--image` / LAB_IMAGE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

from lab.errors import LabError
from lab.i18n import N_, _
from lab.identity import Identity, resolve
from lab.k8s import POD_SECURITY_ENFORCE, NamespaceClient
from lab.manifests import render
from lab.targets.base import Endpoints
from lab.targets.kube import KubeStack, stack_credentials, stop_forwards

log = logging.getLogger(__name__)

NO_IMAGE_FIX = N_(
    "No backend image is published from this repository: build backend/Dockerfile, push it to a "
    "registry the cluster can pull from, and pass --image REF (or set LAB_IMAGE)."
)


@dataclass
class ClusterTarget(KubeStack):
    """Apply the lab into one namespace of an existing cluster, forward its ports, clean up."""

    name: str = field(default="cluster", init=False)
    fix: ClassVar[str] = N_("Re-apply: ironclad-lab up --target cluster --namespace NAMESPACE.")
    identity: Identity | None = field(default=None, init=False)

    def up(self) -> Endpoints:
        """Check the learner's namespace (the instructor's: never applied nor deleted here),
        then build the `wanted` parts in it."""
        s = self.settings
        if not s.registry_image:
            raise LabError(
                _("The cluster target needs the backend image's reference."), _(NO_IMAGE_FIX)
            )
        try:
            self.identity = resolve(
                s.namespace,
                s.kube_context,
                image=s.registry_image,
                shared=True,
                kubeconfig=s.kubeconfig,
                fix=_(
                    "Point KUBECONFIG at the kubeconfig your instructor gave you, and pass "
                    "--context with one of its contexts (kubectl config get-contexts)."
                ),
            )
            self.cluster = cluster = NamespaceClient.connect(self.identity)
            check_namespace(cluster)
            credentials = stack_credentials(cluster)  # kept when a --keep stack is there
            self.objects = render("cluster", s, image=s.registry_image, credentials=credentials)
            self.build_parts(self.wanted)
            self.forward()
            return self.endpoints
        except BaseException:
            self._down_after_failure()
            raise

    def down(self) -> None:
        """Stop the forwards; delete the stack's objects (absent ones are skipped) unless
        `Settings.keep`."""
        stop_forwards(self.forwards)
        if self.cluster is None:
            return
        if self.settings.keep:
            log.info("keeping the lab's objects in %s (--keep)", self.cluster.namespace)
        elif self.objects:
            log.info("deleting the lab's objects from %s …", self.cluster.namespace)
            self.cluster.delete(self.objects, timeout=self.settings.rollout_timeout)
        self.objects = []
        self.forget()

    def _down_after_failure(self) -> None:
        """`down()` while an error is on its way up: a teardown failure is logged, not raised
        (the learner must see the first error, not a second one it caused)."""
        try:
            self.down()
        except LabError as exc:  # the client's errors are LabErrors (lab.k8s explains them)
            log.warning("cleaning up after the failure failed too: %s", exc)


def check_namespace(cluster: NamespaceClient) -> None:
    """Before anything is applied: the namespace exists and enforces Pod Security "restricted"
    (the lab's pods are written for it; the instructor's provision sets it)."""
    ns = cluster.namespace
    namespace = cluster.namespace_state()
    if namespace is None:
        raise LabError(
            _("Namespace {namespace} does not exist on this cluster.").format(namespace=ns),
            _(
                "The instructor creates learner namespaces (ironclad-lab workshop provision); "
                "check --namespace / LAB_NAMESPACE and --context against the kubeconfig you were "
                "given."
            ),
        )
    if namespace.terminating:
        raise LabError(
            _("Namespace {namespace} is being deleted.").format(namespace=ns),
            _("Ask the instructor to provision it again once it is gone."),
        )
    enforced = namespace.labels.get(POD_SECURITY_ENFORCE)
    if enforced != "restricted":
        raise LabError(
            _(
                "Namespace {namespace} is not labelled for Pod Security 'restricted' "
                "({label}={value})."
            ).format(namespace=ns, label=POD_SECURITY_ENFORCE, value=enforced or _("(unset)")),
            _(
                "Ask the instructor to provision it with ironclad-lab workshop provision (which "
                "labels it), or: kubectl label namespace {namespace} {label}=restricted"
            ).format(namespace=ns, label=POD_SECURITY_ENFORCE),
        )
