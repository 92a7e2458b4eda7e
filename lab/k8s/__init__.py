"""Every Kubernetes API call the lab makes, on the official client, each failure explained.

The calls live in this one package, so the verbs and resources a learner's Role must grant are
audited in one place (`lab.rbac` lists them; a recording test keeps the two equal):

- `client`: the one client factory, `api_client(identity)` (`NamespaceClient.connect(identity)`
  uses it: context and namespace travel together);
- `errors`: every failure explained, naming the context, the call, the cause and the fix: an
  error answer is an `ApiError` (`ForbiddenError` 401/403, `NotFoundError` 404,
  `ConflictError` 409, `InvalidError` 422), no answer an `ApiUnreachableError`; a wait that
  cannot succeed a `BlockedError`, a call beyond a shared namespace a `ClusterWideError`;
- `objects`: what the calls return (dataclasses); `frames`: their pandas views for notebooks
  (the `*_frame()` methods load pandas only when called: `lab up` never does);
- `base` (`_call`: every call goes through it), `pods`, `reads`, `apply`, `rollouts`,
  `probes`, `forwards`, `access`: the parts of `NamespaceClient`, one namespace of a cluster.

A `NamespaceClient(..., shared=True)` is a learner's namespace on a shared cluster: whatever
needs more than that namespace (nodes, Namespaces, APIServices, kube-system, other namespaces'
objects) raises `ClusterWideError` before any request.
"""

from lab.k8s.access import Question, Verdict, service_account
from lab.k8s.apply import FIELD_MANAGER
from lab.k8s.client import ExplainingApiClient, api_client
from lab.k8s.errors import (
    IMAGE_FIX,
    POD_SECURITY_FIX,
    QUOTA_FIX,
    ApiError,
    ApiUnreachableError,
    BlockedError,
    ClusterWideError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    api_error,
    explain,
    transport_error,
)
from lab.k8s.namespace import NamespaceClient
from lab.k8s.objects import (
    POD_SECURITY_ENFORCE,
    PROBE_LABEL,
    Applied,
    Event,
    Eviction,
    HpaStatus,
    NamespaceState,
    Node,
    PodState,
    ProbeResult,
    Rollout,
    RolloutSample,
    documents,
    match_labels_selector,
    pods_of,
    rollout_complete,
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
    "ApiError",
    "ApiUnreachableError",
    "Applied",
    "BlockedError",
    "ClusterWideError",
    "ConflictError",
    "Event",
    "Eviction",
    "ExplainingApiClient",
    "ForbiddenError",
    "HpaStatus",
    "InvalidError",
    "NamespaceClient",
    "NamespaceState",
    "Node",
    "NotFoundError",
    "PodState",
    "ProbeResult",
    "Question",
    "Rollout",
    "RolloutSample",
    "Verdict",
    "api_client",
    "api_error",
    "documents",
    "explain",
    "match_labels_selector",
    "pods_of",
    "probe_pod",
    "rollout_complete",
    "service_account",
    "transport_error",
]
