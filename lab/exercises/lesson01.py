"""Lesson 01 (the namespace): the exercise on Prometheus' RBAC."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from lab.contract import PROMETHEUS  # its Role, RoleBinding and ServiceAccount share the name
from lab.exercises import Outcome, session_objects, verifier
from lab.i18n import N_, _
from lab.lint import lint
from lab.manifests import Obj, find

DISCOVERY_VERBS = frozenset({"get", "list", "watch"})  # what role `pod` discovery may use


def with_role_rules(objects: Sequence[Obj], rules: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """A copy of `objects` in which Prometheus' Role grants `rules` (bound as before)."""
    patched = copy.deepcopy(list(objects))
    find(patched, "Role", PROMETHEUS)["rules"] = copy.deepcopy(list(rules))
    return patched


def _excess(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the rules grant beyond get/list/watch on core-group pods."""
    excess = []
    for rule in rules:
        groups, resources = set(rule.get("apiGroups") or []), set(rule.get("resources") or [])
        verbs = set(rule.get("verbs") or [])
        excess += [f"apiGroup {g!r}" for g in sorted(groups - {""})]
        excess += [f"resource {r!r}" for r in sorted(resources - {"pods"})]
        excess += [f"verb {v!r}" for v in sorted(verbs - DISCOVERY_VERBS)]
        excess += ["nonResourceURLs"] if rule.get("nonResourceURLs") else []
    return excess


@verifier(
    "01-prometheus-role",
    hint=N_(
        "Prometheus discovers pods in one namespace (role `pod`, namespaces.names): grant "
        "exactly what that discovery reads, where it reads it, and nothing a learner on a "
        "shared cluster could not create."
    ),
)
def prometheus_role(answer: object, objects: Sequence[Obj] | None = None) -> Outcome:
    """Check the learner's Prometheus role: a Role, least privilege, and discovery works."""
    if not isinstance(answer, Mapping):
        return Outcome(
            False,
            _("a {type}, not a dict with 'kind' and 'rules'").format(type=type(answer).__name__),
        )
    objects = session_objects() if objects is None else objects
    namespace = find(objects, "Role", PROMETHEUS)["metadata"]["namespace"]
    kind = answer.get("kind", "Role")
    if kind != "Role":
        return Outcome(
            False,
            _(
                "a {kind}: cluster-scoped, so a learner on a shared cluster cannot create it, "
                "and discovery reads only namespace {namespace!r}"
            ).format(kind=kind, namespace=namespace),
        )
    rules = list(answer.get("rules") or [])
    if excess := _excess(rules):
        return Outcome(
            False,
            _("the Role grants more than discovery reads: {excess}").format(
                excess=", ".join(excess)
            ),
        )
    patched = with_role_rules(objects, rules)
    if rbac := [f.message for f in lint(patched, namespace) if f.rule == "discovery-rbac"]:
        return Outcome(False, "; ".join(rbac))
    return Outcome(
        True,
        _("a Role granting {rules} in {namespace}; discovery works").format(
            rules=_summary(rules), namespace=namespace
        ),
    )


def _summary(rules: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        _("{verbs} on {resources}").format(
            verbs="/".join(sorted(r.get("verbs") or [])),
            resources="/".join(sorted(r.get("resources") or [])),
        )
        for r in rules
    )
