"""Lesson 05's exercises, checked on the rendered manifests with the learner's change applied:
a PodDisruptionBudget for a higher HPA floor (lint + the Eviction API's arithmetic), and a
NetworkPolicy for a new client (`lab.netpol.evaluate` + every intended path of the lab).

`disruptions_allowed` is the Eviction API's arithmetic (notebook 05 uses it too).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lab import manifests, pod_templates
from lab.contract import BACKEND_HPA
from lab.exercises import Outcome, session_objects, verifier
from lab.i18n import N_, _, ngettext
from lab.lint import Finding, lint
from lab.manifests import Obj
from lab.netpol import INTERNET, KUBE_DNS, Connection, Endpoint, endpoint, evaluate
from lab.session import session_namespace

LAUNCH_FLOOR = 4  # 05-pdb: the HPA's minReplicas during the launch the exercise describes
LOADGEN_LABELS = {"app": "loadgen"}  # 05-netpol: the new client's pods


def disruptions_allowed(spec: Mapping[str, Any], healthy: int, expected: int) -> int:
    """How many pods the Eviction API may take now, for a PDB `spec`, `healthy` ready pods
    and `expected` pods (the workload's scale): percentages of `expected` round up."""
    if "minAvailable" in spec:
        floor = _count(spec["minAvailable"], expected)
    else:
        floor = expected - _count(spec.get("maxUnavailable", 0), expected)
    return max(0, healthy - floor)


def _count(value: int | str, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(expected * int(value[:-1]) / 100)
    return int(value)


def _render(objects: Sequence[Obj] | None) -> list[Obj]:
    return copy.deepcopy(list(objects if objects is not None else session_objects()))


@verifier(
    "05-pdb",
    hint=N_(
        "A drain evicts one pod at a time: the PDB should let exactly one go when every pod "
        "is ready, and a pod that is running but not Ready must never block a drain."
    ),
)
def pdb(answer: object, objects: Sequence[Obj] | None = None, **_context: Any) -> Outcome:
    """The learner's PDB spec with the HPA floor raised to LAUNCH_FLOOR: lint-clean, and one
    eviction allowed (no more, no fewer) when all LAUNCH_FLOOR pods are ready."""
    if not isinstance(answer, Mapping):
        return Outcome(
            False, _("a {type}, not a PDB spec (a dict)").format(type=type(answer).__name__)
        )
    if {"minAvailable", "maxUnavailable"} <= answer.keys():
        return Outcome(
            False,
            _("both minAvailable and maxUnavailable: the API server refuses a PDB with both"),
            _("Choose one of the two."),
        )
    rendered = _render(objects)
    namespace = session_namespace()
    manifests.find(rendered, "HorizontalPodAutoscaler", BACKEND_HPA)["spec"]["minReplicas"] = (
        LAUNCH_FLOOR
    )
    budget = manifests.find(rendered, "PodDisruptionBudget", "backend-pdb")
    budget["spec"] = {"selector": budget["spec"]["selector"], **answer}
    findings = [f for f in lint(rendered, namespace) if f.rule.startswith("pdb-")]
    if findings:
        return Outcome(False, "; ".join(f"{f.rule}: {f.message}" for f in findings))
    try:
        allowed = disruptions_allowed(budget["spec"], LAUNCH_FLOOR, LAUNCH_FLOOR)
    except ValueError as exc:
        return Outcome(False, _("the PDB's numbers do not parse: {error}").format(error=exc))
    seen = ngettext(
        "{allowed} eviction allowed with {ready} of {pods} pods ready",
        "{allowed} evictions allowed with {ready} of {pods} pods ready",
        allowed,
    ).format(allowed=allowed, ready=LAUNCH_FLOOR, pods=LAUNCH_FLOOR)
    return Outcome(allowed == 1, seen)


@verifier(
    "05-netpol",
    hint=N_(
        "Under default deny a new pod can send nothing, not even a DNS query. Select only the "
        "new pods, and allow only the ports they need; the backend's ingress already admits "
        "them."
    ),
)
def netpol(answer: object, objects: Sequence[Obj] | None = None, **_context: Any) -> Outcome:
    """The learner's NetworkPolicy added to the render: `app: loadgen` reaches backend:3000 by
    name (DNS), and nothing else changes: no other path of the loadgen, no lab path, no lint."""
    if not isinstance(answer, Mapping):
        return Outcome(
            False, _("a {type}, not a NetworkPolicy (a dict)").format(type=type(answer).__name__)
        )
    rendered = _render(objects)
    namespace = session_namespace()
    policy = copy.deepcopy(dict(answer))
    policy.setdefault("metadata", {}).setdefault("namespace", namespace)
    if policy.get("kind") != "NetworkPolicy":
        return Outcome(
            False, _("kind {kind!r}, not a NetworkPolicy").format(kind=policy.get("kind"))
        )
    rendered.append(policy)
    pods = {endpoint(p).name: endpoint(p) for p in pod_templates.pods(rendered)}
    loadgen = Endpoint("loadgen", namespace, LOADGEN_LABELS)
    wanted = [
        Connection(loadgen, pods["backend"], 3000, "TCP", True),
        Connection(loadgen, KUBE_DNS, 53, "UDP", True),
        Connection(loadgen, pods["postgres"], 5432, "TCP", False),
        Connection(loadgen, pods["prometheus"], 9090, "TCP", False),
        Connection(loadgen, INTERNET, 443, "TCP", False),
    ]
    try:
        verdicts = [evaluate(rendered, c) for c in wanted]
        wrong = [
            (
                _("{connection} is allowed, must be denied")
                if v.allowed
                else _("{connection} is denied, must be allowed")
            ).format(connection=v.describe())
            for v in verdicts
            if v.allowed != v.expected
        ]
        wrong += [_finding(f) for f in lint(rendered, namespace)]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return Outcome(
            False, _("not a NetworkPolicy the evaluator can read ({error!r})").format(error=exc)
        )
    if len(wrong) > 1:
        return Outcome(
            False,
            _("{problem} (and {count} more; fix this one first)").format(
                problem=wrong[0], count=len(wrong) - 1
            ),
        )
    if wrong:
        return Outcome(False, wrong[0])
    return Outcome(
        True,
        _("loadgen reaches backend:3000 and DNS, nothing else; every lab path keeps its verdict"),
    )


def _finding(finding: Finding) -> str:
    """One lint finding in a line: the rule it breaks and its verdict, without the fix (the
    lint's advice is for the lab's manifests; the exercise's hint is for the learner)."""
    verdict = re.split(r" \((?:egress|allowed|denied)\b", finding.message, maxsplit=1)[0]
    return _("lint rule {rule} on {kind}/{name}: {verdict}").format(
        rule=finding.rule, kind=finding.kind, name=finding.name, verdict=verdict
    )
