"""The learner's Role as data: every (verb, apiGroup, resource) the lab's Kubernetes code needs.

A learner on a shared cluster holds only this Role, bound in their own namespace (and in their
`<namespace>-peer`). `lab.workshop` builds the Role it provisions from `role_rules()`.
tests/unit/lab/test_rbac.py proves the table: it runs the cluster target and the k8s layer
against a recording fake API server and asserts that what they call is exactly `LAB_CALLS`,
that the notebooks' own client calls are `NOTEBOOK_CALLS` (read from their source), and that
`ESCALATION` is exactly what the rendered Roles grant.

Two rules of the API server shape the table:
- Server-side apply is a PATCH; when it creates the object the server also checks `create`
  (so every applied kind has create and patch; teardown adds delete).
- Port-forwarding over a websocket is a GET upgraded to a stream: authorized as `get`, and, from
  Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission), as `create` too.

`get` on `namespaces` is no cluster-wide right: RBAC treats GET /api/v1/namespaces/NS as a
request in namespace NS, so a Role in NS lets the learner read NS's own labels and nothing else.
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
    | _rules("get", "", "secrets")  # the chaos token
    | _rules("get list", "apps", "deployments", "statefulsets")  # rollout waits
    | _rules("get", "autoscaling", "horizontalpodautoscalers")  # HPA floor and lesson 05
)
"""What the lab's own code calls (the recording test's expected set)."""

NOTEBOOK_CALLS: frozenset[Rule] = (
    _rules("create", "", "pods")  # 01 asks for a privileged pod with dryRun (refused)
    | _rules("get", "", "pods", "secrets", "persistentvolumeclaims")  # 02, 03 read objects
    | _rules("list", "", "pods")  # 04 reads which node each replica runs on (the spread)
)
"""What the notebooks call through the client directly (env.k8s.core...), beyond lab's API."""

CALLS: frozenset[Rule] = LAB_CALLS | NOTEBOOK_CALLS

ESCALATION: frozenset[Rule] = _rules("get list watch", "", "pods")
"""What the applied Roles grant (Prometheus' discovery): RBAC lets a user create a Role only
with rules they hold themselves, so the learner holds these too (watch is used by nothing else)."""

LEARNER_RULES: frozenset[Rule] = CALLS | ESCALATION


def role_rules(rules: frozenset[Rule] = LEARNER_RULES) -> list[dict[str, Any]]:
    """`rules` as a Role's `rules:` list: one entry per (apiGroup, verbs), resources sorted."""
    by_group: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in rules:
        verbs[(rule.group, rule.resource)].add(rule.verb)
    for (group, resource), granted in verbs.items():
        by_group[(group, tuple(sorted(granted)))].add(resource)
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(granted)}
        for (group, granted), resources in sorted(by_group.items())
    ]


def parse_role_rules(rules: list[dict[str, Any]]) -> frozenset[Rule]:
    """The `Rule`s a Role's `rules:` list grants (the inverse of `role_rules`)."""
    return frozenset(
        Rule(verb, group, resource)
        for entry in rules
        for group in entry.get("apiGroups", [])
        for resource in entry.get("resources", [])
        for verb in entry.get("verbs", [])
    )
