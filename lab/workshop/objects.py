"""What `workshop provision` creates per learner, as plain objects, and each learner's kubeconfig.

Per learner `<prefix>NN`: the Namespace (Pod Security `restricted`: enforce, audit, warn), a
ResourceQuota (no NodePort or LoadBalancer Services) and a LimitRange sized by
`lab.workshop.capacity`, the ServiceAccount the learner authenticates as, the Role of `lab.rbac`
and its RoleBinding; and the peer namespace `<learner>-peer` (lesson 05's cross-namespace probe)
with a Role for probe pods only (`lab.rbac.PEER_RULES`), bound to the same ServiceAccount, room
for probe pods only, and NetworkPolicies: default deny, then egress to the learner's backend and
DNS only (copied from the rendered stack, so they follow its port and DNS rule). Once per
workshop: the admission policy of `lab.workshop.guard`.

Every object carries the workshop's name (`LABEL_WORKSHOP`) and the id generated when it was
first provisioned (`LABEL_WORKSHOP_ID`): provision refuses namespaces with another id, teardown
deletes only objects with this one. Every object is checked against the Kubernetes client's
models before anything is sent.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from lab.contract import BACKEND  # the Deployment lesson 05 probes from the peer namespace
from lab.errors import LabError
from lab.i18n import _
from lab.manifests import Obj, find
from lab.model_validation import model_problem
from lab.rbac import PEER_RULES, role_rules
from lab.settings import PEER_SUFFIX, check_namespace
from lab.workshop.api import Endpoint
from lab.workshop.capacity import Footprint, probe_footprint
from lab.workshop.guard import policy_objects
from lab.workshop.names import (
    LABEL_LEARNER,
    LABEL_PART,
    LABEL_WORKSHOP,
    LABEL_WORKSHOP_ID,
    MANAGED_BY,
    ROLE,
    SERVICE_ACCOUNT,
)

__all__ = [
    "LABEL_LEARNER",
    "LABEL_PART",
    "LABEL_WORKSHOP",
    "LABEL_WORKSHOP_ID",
    "Plan",
    "all_objects",
    "kubeconfig",
    "learner_names",
    "peer_egress",
    "selector",
]

POD_SECURITY = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}
# Containers without resources get these (the lab's own all declare theirs); no container may
# ask for more than the largest one the lab runs.
DEFAULT_REQUEST = {"cpu": "50m", "memory": "64Mi"}
DEFAULT_LIMIT = {"cpu": "250m", "memory": "256Mi"}
# Service types a learner may not create (also refused by the admission policy).
NO_EXPOSED_SERVICES = {"services.nodeports": "0", "services.loadbalancers": "0"}


@dataclass(frozen=True)
class Plan:
    """What provision makes: the workshop's name, its learners, and the quota of each."""

    workshop: str
    learners: tuple[str, ...]
    footprint: Footprint
    at_rest: Footprint  # the stack's requests at HPA minReplicas (capacity_lines)
    max_container: dict[str, str]  # the largest container limits of the stack
    uid: str = ""  # the workshop's id, generated at its first provision
    peer_egress: tuple[dict[str, Any], ...] = ()  # `peer_egress(stack)`, learner ns unset


def peer_egress(stack: Sequence[Obj]) -> tuple[dict[str, Any], ...]:
    """What a probe pod in the peer namespace may reach, from the rendered stack: the backend's
    pods on their container ports (the namespace is filled in per learner), and DNS as the
    backend's own NetworkPolicy allows it."""
    backend = find(stack, "Deployment", BACKEND)
    template = backend["spec"]["template"]
    ports = [
        {"protocol": port.get("protocol", "TCP"), "port": port["containerPort"]}
        for container in template["spec"]["containers"]
        for port in container.get("ports", [])
    ]
    to_backend = {
        "to": [{"podSelector": {"matchLabels": dict(template["metadata"]["labels"])}}],
        "ports": ports,
    }
    policy = find(stack, "NetworkPolicy", BACKEND)
    dns = [
        copy.deepcopy(rule)
        for rule in policy["spec"].get("egress", [])
        if {port.get("port") for port in rule.get("ports", [])} == {53}
    ]
    if not dns:
        raise LabError(
            _(
                "The rendered backend NetworkPolicy has no DNS egress rule to copy for the peer "
                "namespace."
            ),
            _("Report this bug (manifests/base/networkpolicies.yaml)."),
        )
    return (to_backend, *dns)


def selector(workshop: str, uid: str | None = None, part: str | None = None) -> str:
    """The label selector of what provision made for `workshop` (with id `uid`, and only its
    `part` namespaces, "learner" or "peer", when given)."""
    terms = [f"{LABEL_WORKSHOP}={workshop}"]
    if uid:
        terms.append(f"{LABEL_WORKSHOP_ID}={uid}")
    if part:
        terms.append(f"{LABEL_PART}={part}")
    return ",".join(terms)


def learner_names(count: int, prefix: str) -> tuple[str, ...]:
    """`prefix` + a two-digit (or wider) number from 01; refused unless each is a namespace name
    with room for the peer suffix (`lab.settings.check_namespace`)."""
    if count < 1:
        raise LabError(
            _("--learners {count}: at least one learner.").format(count=count),
            _("Pass --learners N, N >= 1."),
        )
    width, source = max(2, len(str(count))), _("--prefix + number")
    return tuple(check_namespace(f"{prefix}{i:0{width}d}", source) for i in range(1, count + 1))


def namespace_names(plan: Plan) -> list[str]:
    """Every namespace `plan` creates: each learner's, then its peer."""
    return [name for learner in plan.learners for name in (learner, f"{learner}{PEER_SUFFIX}")]


def workshop_labels(plan: Plan) -> dict[str, str]:
    """What every object of the workshop carries: its name and its id."""
    return {LABEL_WORKSHOP: plan.workshop, LABEL_WORKSHOP_ID: plan.uid, **MANAGED_BY}


def labels(plan: Plan, learner: str, part: str) -> dict[str, str]:
    return {**workshop_labels(plan), LABEL_LEARNER: learner, LABEL_PART: part}


def _meta(name: str, namespace: str | None, tags: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(tags)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _network_policies(plan: Plan, learner: str, namespace: str, tags: dict[str, str]) -> list[Obj]:
    """The peer namespace's default deny, and the egress lesson 05's probe needs."""
    egress = copy.deepcopy(list(plan.peer_egress))
    if egress:  # the backend rule: only the learner's own namespace
        for peer in egress[0]["to"]:
            peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": learner}}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("default-deny-all", namespace, tags),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("probe-to-learner-backend", namespace, tags),
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
        },
    ]


def namespace_objects(plan: Plan, learner: str, part: str, quota: Footprint) -> list[Obj]:
    """One namespace of a learner: Namespace, ResourceQuota, LimitRange, Role, RoleBinding
    (the learner namespace also gets the ServiceAccount the binding names; the peer namespace
    its NetworkPolicies)."""
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
            "spec": {"hard": {**quota.quota_hard(), **NO_EXPOSED_SERVICES}},
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
    else:
        objects += _network_policies(plan, learner, namespace, tags)
    objects += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(ROLE, namespace, tags),
            "rules": role_rules() if part == "learner" else role_rules(PEER_RULES),
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
    """The workshop's admission policy first (so no namespace exists unguarded), then every
    learner's objects; all validated (see `model_problem`)."""
    if not plan.uid:
        raise LabError(_("provision built a plan without a workshop id."), _("Report this bug."))
    objects = [
        *policy_objects(plan.workshop, plan.uid, workshop_labels(plan)),
        *(obj for learner in plan.learners for obj in learner_objects(plan, learner)),
    ]
    for obj in objects:
        if problem := model_problem(obj):
            raise LabError(
                _("provision built an invalid object: {problem}").format(problem=problem),
                _("Report this bug."),
            )
    return objects


def kubeconfig(learner: str, endpoint: Endpoint, token: str) -> str:
    """A kubeconfig for one learner: one cluster (the instructor's server, CA, TLS server name
    and proxy), one user (the token), one context whose default namespace is the learner's."""
    cluster: dict[str, Any] = {"server": endpoint.server}
    if endpoint.ca_data:
        cluster["certificate-authority-data"] = endpoint.ca_data
    elif endpoint.insecure:
        cluster["insecure-skip-tls-verify"] = True
    if endpoint.tls_server_name:
        cluster["tls-server-name"] = endpoint.tls_server_name
    if endpoint.proxy_url:
        cluster["proxy-url"] = endpoint.proxy_url
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
