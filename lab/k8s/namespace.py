"""`NamespaceClient`: one namespace of one cluster, every call the lab makes in it."""

from __future__ import annotations

from lab.k8s.apply import Applying
from lab.k8s.probes import Probing
from lab.k8s.rollouts import Rollouts


class NamespaceClient(Applying, Rollouts, Probing):
    """One namespace of one cluster, through the official Python client: apply and delete,
    pods and events, rollouts, probes (`NamespaceClient.connect(identity)` builds it)."""
