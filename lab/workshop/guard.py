"""The workshop's admission policy: what RBAC cannot refuse a learner, the API server does.

RBAC decides *which* verbs a learner has; it cannot look inside an object. Four of the learner's
rights would otherwise let them escalate or keep access past `--token-expiry`:

- a pod running as the `learner` ServiceAccount gets a token the kubelet keeps refreshing for
  as long as the pod lives (their rights, past the expiry of the token the instructor issued);
- a `kubernetes.io/service-account-token` Secret gets a token that never expires;
- a Service with `externalIPs` (or of type NodePort / LoadBalancer, which the ResourceQuota also
  refuses) reaches outside the namespace;
- a RoleBinding may name any subject (`system:authenticated`, another namespace's accounts) and
  bind any Role whose rules the learner holds (their own `ironclad-learner`); a Role may hold any
  rule the learner holds (then a pod running as the account bound to it keeps those rights).

`policy_objects(...)` is one ValidatingAdmissionPolicy and its binding per workshop (named after
it, labelled with its id), matching only the namespaces labelled with that workshop's id (the
learner cannot relabel a namespace). `VALIDATIONS` are its CEL rules; tests/unit/lab/workshop
compile and evaluate them offline (cel-python), the `workshop-kind` workflow job on a real API
server. ValidatingAdmissionPolicy is GA since Kubernetes 1.30; provision refuses an older cluster
before it changes anything (`KubeInstructorApi.apply` resolves every kind first). The message a
refused learner reads is in the language the workshop was provisioned in (`LAB_LANG=es
ironclad-lab workshop provision` for a Spanish class: lab.i18n).
"""

from __future__ import annotations

from typing import Any

from lab.i18n import N_, _
from lab.manifests import Obj
from lab.rbac import ESCALATION
from lab.workshop.names import LABEL_LEARNER, LABEL_WORKSHOP_ID, ROLE, SERVICE_ACCOUNT

API_VERSION = "admissionregistration.k8s.io/v1"
POLICY_KIND = "ValidatingAdmissionPolicy"
BINDING_KIND = "ValidatingAdmissionPolicyBinding"


def _cel_list(values: set[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


# A Role the learner writes may grant what the lab's own Roles grant (Prometheus' discovery) and
# nothing more: `lab.rbac.ESCALATION`.
ROLE_VERBS = _cel_list({r.verb for r in ESCALATION})
ROLE_RESOURCES = _cel_list({r.resource for r in ESCALATION})
ROLE_GROUPS = _cel_list({r.group for r in ESCALATION})
# The namespaces whose ServiceAccounts a RoleBinding may name: the one it is in, and the
# learner's own (the peer namespace's binding names the learner's account).
OWN_NAMESPACES = (
    f"[namespaceObject.metadata.name, namespaceObject.metadata.labels['{LABEL_LEARNER}']]"
)

VALIDATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "pods",
        f"!(has(object.spec.serviceAccountName) && object.spec.serviceAccountName == "
        f"'{SERVICE_ACCOUNT}') && !(has(object.spec.serviceAccount) && "
        f"object.spec.serviceAccount == '{SERVICE_ACCOUNT}')",
        N_(
            "pods may not run as the ServiceAccount '{account}': its token would outlive the "
            "workshop's token expiry"
        ),
    ),
    (
        "secrets",
        "!has(object.type) || object.type != 'kubernetes.io/service-account-token'",
        N_("ServiceAccount token Secrets are refused in workshop namespaces (they never expire)"),
    ),
    (
        "services",
        "(!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0) && "
        "(!has(object.spec.type) || object.spec.type == 'ClusterIP')",
        N_("Services in workshop namespaces are ClusterIP only, without externalIPs"),
    ),
    (
        "rolebindings",
        f"object.roleRef.kind == 'Role' && (object.metadata.name == '{ROLE}' || "
        f"object.roleRef.name != '{ROLE}') && (!has(object.subjects) || "
        f"object.subjects.all(s, s.kind == 'ServiceAccount' && has(s.namespace) && "
        f"s.namespace in {OWN_NAMESPACES}))",
        N_(
            "a RoleBinding in a workshop namespace binds a Role (not the learner's) to "
            "ServiceAccounts of the learner's own namespaces only"
        ),
    ),
    (
        "roles",
        f"object.metadata.name == '{ROLE}' || !has(object.rules) || object.rules.all(r, "
        f"!has(r.nonResourceURLs) && r.verbs.all(v, v in {ROLE_VERBS}) && "
        f"(!has(r.resources) || r.resources.all(x, x in {ROLE_RESOURCES})) && "
        f"(!has(r.apiGroups) || r.apiGroups.all(g, g in {ROLE_GROUPS})))",
        N_(
            "a Role in a workshop namespace may grant only {verbs} on {resources} (what the "
            "lab's Prometheus needs)"
        ),
    ),
)
"""(resource, CEL expression that must hold, message when it does not: translated and its
`{placeholders}` filled in from MESSAGE_VALUES when the policy is built)."""
MESSAGE_VALUES = {"account": SERVICE_ACCOUNT, "verbs": ROLE_VERBS, "resources": ROLE_RESOURCES}

RESOURCE_GROUPS = {
    "pods": "",
    "secrets": "",
    "services": "",
    "rolebindings": "rbac.authorization.k8s.io",
    "roles": "rbac.authorization.k8s.io",
}


def policy_name(workshop: str) -> str:
    """The policy's and its binding's name (cluster-scoped: the workshop name makes it unique)."""
    return f"ironclad-lab-{workshop}"


def _resource_rules() -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for resource in sorted(RESOURCE_GROUPS):
        groups.setdefault(RESOURCE_GROUPS[resource], []).append(resource)
    return [
        {
            "apiGroups": [group],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
        }
        for group, resources in sorted(groups.items())
    ]


def policy_objects(workshop: str, uid: str, labels: dict[str, str]) -> list[Obj]:
    """The ValidatingAdmissionPolicy of workshop `workshop` and its binding to the namespaces
    labelled with its id `uid`; both carry `labels`."""
    name = policy_name(workshop)
    validations = [
        {
            "expression": f"request.resource.resource != '{resource}' || ({expression})",
            "message": _(message).format(**MESSAGE_VALUES),
            "reason": "Forbidden",
        }
        for resource, expression, message in VALIDATIONS
    ]
    policy: Obj = {
        "apiVersion": API_VERSION,
        "kind": POLICY_KIND,
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": _resource_rules()},
            "validations": validations,
        },
    }
    binding: Obj = {
        "apiVersion": API_VERSION,
        "kind": BINDING_KIND,
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {LABEL_WORKSHOP_ID: uid}}},
        },
    }
    return [policy, binding]
