"""The learner's Role as data: every (verb, apiGroup, resource) the lab's Kubernetes code needs.

A learner on a shared cluster holds only this Role, bound in their own namespace (and in their
`<namespace>-peer`). `lab.workshop` builds the Role it provisions from `role_rules()`.
tests/unit/lab/test_rbac.py proves the table: it runs the cluster target and the k8s layer
against a recording fake API server and asserts that what they call is exactly `LAB_CALLS`
(notebooks make no client call of their own: each goes through `lab.k8s`), and that
`ESCALATION` is exactly what the rendered Roles grant.

Two rules of the API server shape the table:
- Server-side apply is a PATCH; when it creates the object the server also checks `create`
  (so every applied kind has create and patch; teardown adds delete).
- Port-forwarding over a websocket is a GET upgraded to a stream: authorized as `get`, and, from
  Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission), as `create` too.

`get` on `namespaces` is no cluster-wide right: RBAC treats GET /api/v1/namespaces/NS as a
request in namespace NS, so a Role in NS lets the learner read NS's own labels and nothing else.

Roles and RoleBindings are named (`NAMED`): the learner may write only the ones the lab applies
(Prometheus'), never the instructor's `ironclad-learner`. `resourceNames` can restrict `create`
here because the lab creates by server-side apply, a PATCH to the object's own URL: the API
server checks the `create` it implies with the name (a POST to the collection carries none and is
refused). What such a Role may grant and whom such a binding may name is the workshop's
admission policy's job (`lab.workshop.guard`): RBAC alone would let the learner bind their own
Role to any subject.

The peer namespace (`<namespace>-peer`) gets `PEER_RULES` only: lesson 05's probe pod.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Rule:
    """One permission: `verb` on `resource` ("pods" or a subresource "pods/log") of `group`."""

    verb: str
    group: str
    resource: str


def _rules(verbs: str, group: str, *resources: str) -> frozenset[Rule]:
    return frozenset(Rule(v, group, r) for v in verbs.split() for r in resources)


# The kinds `render(target="cluster")` holds: applied (create + patch) and torn down (delete).
APPLIED = (
    _rules("create patch delete", "", "configmaps", "secrets", "services", "serviceaccounts")
    | _rules("create patch delete", "apps", "deployments", "statefulsets")
    | _rules("create patch delete", "autoscaling", "horizontalpodautoscalers")
    | _rules("create patch delete", "policy", "poddisruptionbudgets")
    | _rules("create patch delete", "networking.k8s.io", "networkpolicies")
    | _rules("create patch delete", "rbac.authorization.k8s.io", "roles", "rolebindings")
)

LAB_CALLS: frozenset[Rule] = APPLIED | (
    _rules("get", "", "namespaces")  # the cluster target checks NS exists and its Pod Security
    | _rules("get list create delete", "", "pods")  # pod tables, waits, probe pods, pod kill
    | _rules("get", "", "pods/log")  # logs, probe output, diagnostics
    | _rules("create", "", "pods/eviction")  # evictions (the PDB lesson)
    | _rules("get create", "", "pods/portforward")  # the forwards to backend and Prometheus
    | _rules("list", "", "events")  # diagnostics and the "last event" of every failed wait
    | _rules("get", "", "secrets")  # the chaos token, the stack's credentials, lesson 02
    | _rules("get", "", "persistentvolumeclaims")  # 03: the volume bound to postgres' claim
    | _rules("get list", "apps", "deployments", "statefulsets")  # rollout waits
    | _rules("get", "autoscaling", "horizontalpodautoscalers")  # HPA floor and lesson 05
    # reset --to N finds the exercises' objects by label (lab.reset.EXERCISE_KINDS) to delete them
    | _rules("list", "", "configmaps")
    | _rules("list", "policy", "poddisruptionbudgets")
    | _rules("list", "networking.k8s.io", "networkpolicies")
    # lesson 08 (lab.backup): the backup add-on (render("backup")) applied and removed, its
    # backup / disaster / restore Jobs created, then removed by label with their pods
    | _rules("create patch delete", "", "persistentvolumeclaims")
    | _rules("create patch delete", "batch", "cronjobs")
    | _rules("create patch delete list", "batch", "jobs")
)
"""What the lab's code calls for the lessons (the recording test's expected set)."""

ESCALATION: frozenset[Rule] = _rules("get list watch", "", "pods")
"""What the applied Roles grant (Prometheus' discovery): RBAC lets a user create a Role only
with rules they hold themselves, so the learner holds these too (watch is used by nothing else)."""

LEARNER_RULES: frozenset[Rule] = LAB_CALLS | ESCALATION

PEER_RULES: frozenset[Rule] = (
    _rules("get list create delete", "", "pods")  # lesson 05's probe pod, its wait, cleanup
    | _rules("get", "", "pods/log")  # what the probe printed
    | _rules("list", "", "events")  # the diagnosis of a probe that never finished
)
"""The Role in a learner's peer namespace: lesson 05's cross-namespace probe, nothing else (no
NetworkPolicy, Role or Service there is the learner's to change)."""

RBAC_GROUP = "rbac.authorization.k8s.io"
NAMED: dict[tuple[str, str], tuple[str, ...]] = {
    (RBAC_GROUP, "roles"): ("prometheus",),
    (RBAC_GROUP, "rolebindings"): ("prometheus",),
}
"""(group, resource) -> the only names the learner may write: the objects of that kind the
cluster render holds (tests/unit/lab/test_rbac.py keeps the two equal)."""


def role_rules(
    rules: frozenset[Rule] = LEARNER_RULES,
    named: dict[tuple[str, str], tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """`rules` as a Role's `rules:` list: one entry per (apiGroup, verbs, resourceNames),
    resources sorted; resources in `named` (default `NAMED`) carry their `resourceNames`."""
    named = NAMED if named is None else named
    by_group: dict[tuple[str, tuple[str, ...], tuple[str, ...]], set[str]] = defaultdict(set)
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in rules:
        verbs[(rule.group, rule.resource)].add(rule.verb)
    for (group, resource), held in verbs.items():
        names = named.get((group, resource), ())
        by_group[(group, tuple(sorted(held)), names)].add(resource)
    entries = []
    for (group, granted, names), resources in sorted(by_group.items()):
        entry: dict[str, Any] = {
            "apiGroups": [group],
            "resources": sorted(resources),
            "verbs": list(granted),
        }
        if names:
            entry["resourceNames"] = list(names)
        entries.append(entry)
    return entries


def parse_role_rules(rules: list[dict[str, Any]]) -> frozenset[Rule]:
    """The `Rule`s a Role's `rules:` list grants (the inverse of `role_rules`)."""
    return frozenset(
        Rule(verb, group, resource)
        for entry in rules
        for group in entry.get("apiGroups", [])
        for resource in entry.get("resources", [])
        for verb in entry.get("verbs", [])
    )


# --- evaluation: what the API server's RBAC authorizer decides for a set of Roles -------------


@dataclass(frozen=True)
class Request:
    """One authorization question: `verb` on `resource` ("pods", "pods/log") of `group`, in
    `namespace` (None: cluster-scoped), of the object `name` (None: a collection or a POST)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None = None


def _matches(granted: list[str], wanted: str) -> bool:
    return "*" in granted or wanted in granted


def _resource_matches(granted: list[str], resource: str) -> bool:
    """RBAC's ResourceMatches: "*", the exact "resource[/subresource]", or "*/subresource"."""
    if _matches(granted, resource):
        return True
    _, slash, sub = resource.partition("/")
    return bool(slash) and f"*/{sub}" in granted


def rule_allows(entry: dict[str, Any], request: Request) -> bool:
    """Whether one `rules:` entry of a Role grants `request` (RBAC's RuleAllows)."""
    names = entry.get("resourceNames") or []
    return (
        _matches(entry.get("verbs", []), request.verb)
        and _matches(entry.get("apiGroups", []), request.group)
        and _resource_matches(entry.get("resources", []), request.resource)
        and (not names or (request.name is not None and request.name in names))
    )


def allows(roles: dict[str, list[dict[str, Any]]], request: Request) -> bool:
    """Whether the Roles bound to a user (namespace -> that Role's `rules:`) grant `request`.
    A Role grants only requests in its own namespace; nothing cluster-scoped."""
    if request.namespace is None:
        return False
    return any(rule_allows(e, request) for e in roles.get(request.namespace, []))


def covers(held: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
    """RBAC's escalation check: whether a holder of `held` may create a Role with `wanted` (or
    bind one), i.e. every single permission of `wanted` is granted by `held`."""
    for entry in wanted:
        if entry.get("nonResourceURLs"):
            return False
        for verb in entry.get("verbs", []):
            for group in entry.get("apiGroups", []):
                for resource in entry.get("resources", []):
                    names = entry.get("resourceNames") or [None]
                    for name in names:
                        owner = [e for e in held if name is not None or not e.get("resourceNames")]
                        if not any(
                            rule_allows(e, Request(verb, group, resource, "-", name)) for e in owner
                        ):
                            return False
    return True
