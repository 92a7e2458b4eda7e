"""Semantic lint of rendered manifests: what checkov (tests/manifests/test_checkov.py) cannot say.

checkov already gates the tests on resources requests/limits (CKV_K8S_10-13), probe presence
(CKV_K8S_8/9), image tags (CKV_K8S_14) and readOnlyRootFilesystem (CKV_K8S_22), so those rules
are not repeated here. What is left needs the objects
*together*: selectors that select the pod template, Services whose selectors and target ports
meet real container ports, StatefulSets with a headless Service, HPA/PDB targets and replica
arithmetic, probe ports that exist, Pod Security "restricted" as the admission controller
defines it (checkov's checks approximate it one field at a time), scrape annotations naming a
real port and path, Secret/ConfigMap references and keys that exist, restricted namespaces, and
the NetworkPolicy paths the lab intends (`lab.netpol`). `lint()` returns `Finding`s;
`findings_frame()` is the notebooks' table.

The rules, one function each, live by theme: `wiring` (objects that must meet: selectors,
Services, HPA/PDB, storage, references), `isolation` (Pod Security "restricted", probes,
default-deny, restricted namespaces), `monitoring` (scrape annotations and Prometheus'
discovery RBAC); `base` holds `Finding` and the `LintRun` every rule adds to. `RULES` is their
order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict

import pandas as pd

from lab.i18n import _
from lab.lint import isolation, monitoring, wiring
from lab.lint.base import Finding, LintRun
from lab.lint.monitoring import METRICS_PATHS
from lab.manifests import Obj
from lab.netpol import Connection, Verdict, evaluate_paths, lab_paths

__all__ = ["METRICS_PATHS", "RULES", "Finding", "findings_frame", "lint", "path_finding"]

# Every rule, in the order its findings are reported.
RULES: tuple[Callable[[LintRun], None], ...] = (
    wiring.workload_selectors,
    wiring.services,
    wiring.statefulset_services,
    wiring.autoscaling,
    wiring.topology_spread,
    isolation.default_deny,
    wiring.statefulset_storage,
    monitoring.discovery_rbac,
    isolation.containers,
    isolation.pod_security,
    monitoring.scrape_annotations,
    wiring.references,
    isolation.namespaces,
)


def lint(
    objects: Sequence[Obj],
    namespace: str,
    paths: Sequence[Connection] | None = None,
    metrics_paths: Sequence[str] = METRICS_PATHS,
) -> list[Finding]:
    """Every broken rule in `objects`, including NetworkPolicy paths that differ from `paths`
    (default: the lab's intended paths in `namespace`, `lab.netpol.lab_paths`)."""
    run = LintRun(objects, metrics_paths)
    for rule in RULES:
        rule(run)
    findings = run.findings
    wanted = lab_paths(objects, namespace) if paths is None else paths
    for verdict in evaluate_paths(objects, wanted):
        if verdict.expected is not None and verdict.allowed != verdict.expected:
            findings.append(path_finding(verdict))
    return findings


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as a table (one row each)."""
    columns = ["kind", "namespace", "name", "field", "rule", "message"]
    return pd.DataFrame([asdict(f) for f in findings], columns=columns)


def path_finding(verdict: Verdict) -> Finding:
    """A lint finding for a NetworkPolicy verdict that differs from the intended one."""
    conn = verdict.connection
    namespace, name, direction = (
        verdict.deciding[0]
        if verdict.deciding
        else (conn.source.namespace or "", "(none)", "podSelector")
    )
    return Finding(
        "NetworkPolicy",
        name,
        f"spec.{direction}",
        "network-policy-paths",
        (
            _("{path} must be allowed but is denied (egress: {egress}; ingress: {ingress})")
            if verdict.expected
            else _("{path} must be denied but is allowed (egress: {egress}; ingress: {ingress})")
        ).format(path=verdict.describe(), egress=verdict.egress, ingress=verdict.ingress),
        namespace,
    )
