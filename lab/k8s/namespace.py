"""`NamespaceClient`: one namespace of one cluster, every call the lab makes in it."""

from __future__ import annotations

from lab.k8s.access import Access
from lab.k8s.apply import Applying
from lab.k8s.forwards import Forwarding
from lab.k8s.probes import Probing
from lab.k8s.rollouts import Rollouts


class NamespaceClient(Applying, Rollouts, Probing, Forwarding, Access):
    """One namespace of one cluster, through the official Python client: apply and delete,
    pods, events and other reads, rollouts, probes, port-forwards, access reviews
    (`NamespaceClient.connect(identity)` builds it)."""
