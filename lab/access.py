"""`kubectl auth can-i` through the API: may an identity do something, in which namespace?

The API server answers access reviews with the same authorizer that guards every request, so
the answer is the real one, not a reading of the RBAC objects. A SelfSubjectAccessReview asks
about you and needs only what every authenticated user has (`system:basic-user`); a
SubjectAccessReview asks about anyone (e.g. a ServiceAccount) and needs the cluster-scoped
right to create one (kind's admin has it, a learner on a shared cluster does not).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from kubernetes import client

__all__ = ["Question", "can_i", "service_account", "verdicts"]


@dataclass(frozen=True)
class Question:
    """`kubectl auth can-i VERB RESOURCE [-n NAMESPACE]`; no namespace means cluster-wide."""

    verb: str
    resource: str
    namespace: str | None = None
    group: str = ""  # "" is the core API group (pods, secrets, nodes)

    def attributes(self) -> client.V1ResourceAttributes:
        return client.V1ResourceAttributes(
            verb=self.verb, resource=self.resource, namespace=self.namespace, group=self.group
        )

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {self.resource} {where}"


def service_account(namespace: str, name: str) -> str:
    """The user name the API server gives a ServiceAccount's token."""
    return f"system:serviceaccount:{namespace}:{name}"


def can_i(api_client: Any, question: Question, user: str | None = None) -> bool:
    """The API server's answer to `question`, for `user` (None: whoever `api_client` is)."""
    api = client.AuthorizationV1Api(api_client)
    attributes = question.attributes()
    if user is None:
        spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        status = api.create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(spec=spec)
        ).status
    else:
        about = client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
        status = api.create_subject_access_review(client.V1SubjectAccessReview(spec=about)).status
    return status is not None and bool(status.allowed)


def verdicts(
    api_client: Any, questions: Iterable[Question], user: str | None = None
) -> pd.DataFrame:
    """One row per question: what was asked and whether the API server allows it."""
    rows = [{"may": str(q), "allowed": can_i(api_client, q, user)} for q in questions]
    return pd.DataFrame(rows, columns=["may", "allowed"])
