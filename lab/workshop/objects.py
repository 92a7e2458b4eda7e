"""What `workshop provision` creates per learner, as plain objects, and each learner's kubeconfig.

Per learner `<prefix>NN`: the Namespace (Pod Security `restricted`: enforce, audit, warn), a
ResourceQuota and a LimitRange sized by `lab.workshop.capacity`, the ServiceAccount the learner
authenticates as, the Role of `lab.rbac` and its RoleBinding; and the peer namespace
`<learner>-peer` (lesson 05's cross-namespace probe) with the same Role bound to the same
ServiceAccount and room for probe pods only. Every object carries `LABEL_WORKSHOP` (teardown
selects by it) and `LABEL_LEARNER`; every object is checked against the Kubernetes client's
models before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from lab.errors import LabError
from lab.manifests import Obj
from lab.models import model_problem
from lab.rbac import role_rules
from lab.settings import PEER_SUFFIX, check_namespace
from lab.workshop.capacity import Footprint, probe_footprint

LABEL_WORKSHOP = "ironclad.lab/workshop"
LABEL_LEARNER = "ironclad.lab/learner"
LABEL_PART = "ironclad.lab/part"  # "learner" or "peer": which of the two namespaces
MANAGED_BY = {"app.kubernetes.io/managed-by": "ironclad-lab"}
POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}
ROLE = "ironclad-learner"
SERVICE_ACCOUNT = "learner"
# Containers without resources get these (the lab's own all declare theirs); no container may
# ask for more than the largest one the lab runs.
DEFAULT_REQUEST = {"cpu": "50m", "memory": "64Mi"}
DEFAULT_LIMIT = {"cpu": "250m", "memory": "256Mi"}


@dataclass(frozen=True)
class Plan:
    """What provision makes: the workshop's name, its learners, and the quota of each."""

    workshop: str
    learners: tuple[str, ...]
    footprint: Footprint
    at_rest: Footprint  # the stack's requests at HPA minReplicas (capacity_lines)
    max_container: dict[str, str]  # the largest container limits of the stack


def selector(workshop: str, part: str | None = None) -> str:
    """The label selector of what provision made for `workshop` (only its `part` namespaces:
    "learner" or "peer", when given)."""
    return f"{LABEL_WORKSHOP}={workshop}" + (f",{LABEL_PART}={part}" if part else "")


def learner_names(count: int, prefix: str) -> tuple[str, ...]:
    """`prefix` + a two-digit (or wider) number from 01; refused unless each is a namespace name
    with room for the peer suffix (`lab.settings.check_namespace`)."""
    if count < 1:
        raise LabError(f"--learners {count}: at least one learner.", "Pass --learners N, N >= 1.")
    width = max(2, len(str(count)))
    return tuple(
        check_namespace(f"{prefix}{i:0{width}d}", "--prefix + number") for i in range(1, count + 1)
    )


def labels(plan: Plan, learner: str, part: str) -> dict[str, str]:
    return {LABEL_WORKSHOP: plan.workshop, LABEL_LEARNER: learner, LABEL_PART: part, **MANAGED_BY}


def _meta(name: str, namespace: str | None, tags: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(tags)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace_objects(plan: Plan, learner: str, part: str, quota: Footprint) -> list[Obj]:
    """One namespace of a learner: Namespace, ResourceQuota, LimitRange, Role, RoleBinding
    (the learner namespace also gets the ServiceAccount the binding names)."""
    namespace = learner if part == "learner" else f"{learner}{PEER_SUFFIX}"
    tags = labels(plan, learner, part)
    objects: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(namespace, None, {**tags, **POD_SECURITY}),
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta("ironclad-lab", namespace, tags),
            "spec": {"hard": quota.quota_hard()},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta("ironclad-lab", namespace, tags),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": dict(DEFAULT_REQUEST),
                        "default": dict(DEFAULT_LIMIT),
                        "max": dict(plan.max_container),
                    }
                ]
            },
        },
    ]
    if part == "learner":
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(SERVICE_ACCOUNT, namespace, tags),
                "automountServiceAccountToken": False,
            }
        )
    objects += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(ROLE, namespace, tags),
            "rules": role_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(ROLE, namespace, tags),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": learner}],
        },
    ]
    return objects


def learner_objects(plan: Plan, learner: str) -> list[Obj]:
    """Everything provision makes for one learner: their namespace, then the peer namespace."""
    return [
        *namespace_objects(plan, learner, "learner", plan.footprint),
        *namespace_objects(plan, learner, "peer", probe_footprint()),
    ]


def all_objects(plan: Plan) -> list[Obj]:
    """Every learner's objects, validated (see `model_problem`)."""
    objects = [obj for learner in plan.learners for obj in learner_objects(plan, learner)]
    for obj in objects:
        if problem := model_problem(obj):
            raise LabError(f"provision built an invalid object: {problem}", "Report this bug.")
    return objects


def kubeconfig(
    learner: str, server: str, ca_data: str | None, token: str, insecure: bool = False
) -> str:
    """A kubeconfig for one learner: one cluster, one user (the token), one context whose
    default namespace is the learner's."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    elif insecure:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "workshop", "cluster": cluster}],
        "users": [{"name": learner, "user": {"token": token}}],
        "contexts": [
            {
                "name": learner,
                "context": {"cluster": "workshop", "user": learner, "namespace": learner},
            }
        ],
        "current-context": learner,
    }
    return yaml.safe_dump(config, sort_keys=False)
