"""Every Kubernetes API call the lab makes, for one namespace, on the official client.

The calls live in this one package, so the verbs and resources a learner's Role must grant are
audited in one place (`lab.rbac` lists them; a recording test keeps the two equal):

- `client`: the one client factory, `api_client(identity)` (`NamespaceClient.connect(identity)`
  uses it: context and namespace travel together), and `explained`;
- `errors`: every failure explained (`ForbiddenError`, `ApiUnreachableError`, `BlockedError`,
  `ClusterWideError`), naming the context, the cause and the fix;
- `objects`: dataclasses and rules on the API's objects; `frames`: their pandas views;
- `base`, `pods`, `apply`, `rollouts`, `probes`: the calls, as the parts of `NamespaceClient`.

A `NamespaceClient(..., shared=True)` is a learner's namespace on a shared cluster: whatever
needs more than that namespace (nodes, Namespaces, APIServices, kube-system, other namespaces'
objects) raises `ClusterWideError` before any request, and the API's refusals (403 RBAC, quota,
Pod Security) and waits that cannot succeed (ImagePullBackOff, quota, Pod Security) become one
`LabError` naming the cause, what to do, and the last event.
"""

from lab.k8s.apply import FIELD_MANAGER
from lab.k8s.client import ExplainingApiClient, api_client, explained
from lab.k8s.errors import (
    IMAGE_FIX,
    POD_SECURITY_FIX,
    QUOTA_FIX,
    ApiUnreachableError,
    BlockedError,
    ClusterWideError,
    ForbiddenError,
    api_error,
    transport_error,
)
from lab.k8s.frames import pods_frame
from lab.k8s.namespace import NamespaceClient
from lab.k8s.objects import (
    POD_SECURITY_ENFORCE,
    PROBE_LABEL,
    Eviction,
    HpaStatus,
    PodState,
    ProbeResult,
    documents,
    match_labels_selector,
    pods_of,
    rollout_complete,
    rollout_row,
)
from lab.k8s.pods import EVENT_SLACK
from lab.k8s.probes import PROBE_SCRIPT, probe_pod

__all__ = [
    "EVENT_SLACK",
    "FIELD_MANAGER",
    "IMAGE_FIX",
    "POD_SECURITY_ENFORCE",
    "POD_SECURITY_FIX",
    "PROBE_LABEL",
    "PROBE_SCRIPT",
    "QUOTA_FIX",
    "ApiUnreachableError",
    "BlockedError",
    "ClusterWideError",
    "Eviction",
    "ExplainingApiClient",
    "ForbiddenError",
    "HpaStatus",
    "NamespaceClient",
    "PodState",
    "ProbeResult",
    "api_client",
    "api_error",
    "documents",
    "explained",
    "match_labels_selector",
    "pods_frame",
    "pods_of",
    "probe_pod",
    "rollout_complete",
    "rollout_row",
    "transport_error",
]
