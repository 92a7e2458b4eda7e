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
from typing import TYPE_CHECKING, Any

from kubernetes import client

from lab.i18n import _
from lab.k8s.base import NamespaceBase

if TYPE_CHECKING:
    import pandas as pd


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
        if self.namespace:
            return _("{verb} {resource} in {namespace}").format(
                verb=self.verb, resource=self.resource, namespace=self.namespace
            )
        return _("{verb} {resource} cluster-wide").format(verb=self.verb, resource=self.resource)


@dataclass(frozen=True)
class Verdict:
    """The API server's answer to one `Question` (`may` is the question as words)."""

    may: str
    allowed: bool


def service_account(namespace: str, name: str) -> str:
    """The user name the API server gives a ServiceAccount's token."""
    return f"system:serviceaccount:{namespace}:{name}"


class Access(NamespaceBase):
    """Access reviews with this client's credentials."""

    def can_i(self, question: Question, user: str | None = None) -> bool:
        """The API server's answer to `question`, for `user` (None: whoever this client is)."""
        api = client.AuthorizationV1Api(self.api_client)
        attributes = question.attributes()
        status: Any
        if user is None:
            spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
            review = client.V1SelfSubjectAccessReview(spec=spec)
            status = self._call(
                _("ask whether you may {question}").format(question=question),
                lambda: api.create_self_subject_access_review(review).status,
                None,
            )
        else:
            about = client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
            status = self._call(
                _("ask whether {user} may {question}").format(user=user, question=question),
                lambda: (
                    api.create_subject_access_review(
                        client.V1SubjectAccessReview(spec=about)
                    ).status
                ),
                None,
            )
        return status is not None and bool(status.allowed)

    def verdicts(self, questions: Iterable[Question], user: str | None = None) -> list[Verdict]:
        """One verdict per question: what was asked and whether the API server allows it."""
        return [Verdict(str(q), self.can_i(q, user)) for q in questions]

    def verdicts_frame(
        self, questions: Iterable[Question], user: str | None = None
    ) -> pd.DataFrame:
        """`verdicts` as a table (columns `may`, `allowed`)."""
        from lab.k8s.frames import frame

        return frame(self.verdicts(questions, user), Verdict)
