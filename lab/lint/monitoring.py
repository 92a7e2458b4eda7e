"""Lint rules for monitoring: scrape annotations that name a real port and path, and the RBAC
Prometheus' kubernetes_sd discovery needs in each namespace it watches."""

from __future__ import annotations

from typing import Any

import yaml

from lab.i18n import _
from lab.lint.base import LintRun, port_list
from lab.manifests import ident
from lab.pod_templates import Pod

METRICS_PATHS = ("/metrics",)


def prometheus_configs(run: LintRun, pod: Pod) -> list[dict[str, Any]]:
    """The prometheus.yml files mounted into `pod` from ConfigMaps."""
    configs = []
    for volume in pod.spec.get("volumes") or []:
        name = (volume.get("configMap") or {}).get("name", "")
        cm = run.find("ConfigMap", pod.namespace, name) if name else None
        if cm is not None and "prometheus.yml" in (cm.get("data") or {}):
            configs.append(yaml.safe_load(cm["data"]["prometheus.yml"]))
    return configs


def discovery_rbac(run: LintRun) -> None:
    # What each kubernetes_sd role lists and watches (core API group).
    needs = {
        "pod": ["pods"],
        "service": ["services"],
        "endpoints": ["endpoints", "pods", "services"],
    }
    for pod in run.pods:
        sa = pod.spec.get("serviceAccountName", "default")
        for config in prometheus_configs(run, pod):
            for job in config.get("scrape_configs") or []:
                where = f"prometheus.yml[{job['job_name']}].kubernetes_sd_configs"
                for sd in job.get("kubernetes_sd_configs") or []:
                    names = (sd.get("namespaces") or {}).get("names")
                    if not names or sd["role"] not in needs:
                        run.add(
                            pod.workload,
                            where,
                            "discovery-rbac",
                            _(
                                "role {role} with namespaces {names}: list the namespaces to "
                                "discover (namespaces.names) and use a role of {roles}; "
                                "anything else needs cluster-wide rights"
                            ).format(role=repr(sd["role"]), names=names, roles=sorted(needs)),
                        )
                        continue
                    for ns in names:
                        for res in needs[sd["role"]]:
                            discovery_grant(run, pod, sa, ns, res, job["job_name"])


def discovery_grant(run: LintRun, pod: Pod, sa: str, ns: str, resource: str, job: str) -> None:
    granted: set[str] = set()
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for binding in run.of_kind(kind):
            if kind == "RoleBinding" and ident(binding)[1] != ns:
                continue
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == sa
                and s.get("namespace", ident(binding)[1]) == pod.namespace
                for s in binding.get("subjects") or []
            ):
                continue
            ref = binding["roleRef"]
            role = run.find(ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"])
            for rule in (role or {}).get("rules") or []:
                if "" in rule.get("apiGroups", []) and resource in rule.get("resources", []):
                    granted |= set(rule.get("verbs", []))
    missing = sorted({"list", "watch"} - granted)
    if missing or pod.spec.get("automountServiceAccountToken") is False:
        run.add(
            pod.workload,
            f"prometheus.yml[{job}].kubernetes_sd_configs",
            "discovery-rbac",
            _(
                "ServiceAccount {account} needs list and watch on {resource} in namespace "
                "{namespace} (missing: {missing}) and its token mounted "
                "(automountServiceAccountToken: {automount}); without both, discovery finds "
                "nothing and no target is scraped"
            ).format(
                account=repr(sa),
                resource=resource,
                namespace=repr(ns),
                missing=missing or _("none"),
                automount=pod.spec.get("automountServiceAccountToken", True),
            ),
        )


def scrape_annotations(run: LintRun) -> None:
    for pod in run.pods:
        ann = pod.annotations
        if ann.get("prometheus.io/scrape") != "true":
            continue
        base = "spec.template.metadata.annotations"
        port = ann.get("prometheus.io/port", "")
        if not port.isdigit() or int(port) not in pod.port_numbers:
            run.add(
                pod.workload,
                f"{base}[prometheus.io/port]",
                "prometheus-annotations",
                _("{port} is not a container port (ports: {ports})").format(
                    port=repr(port), ports=port_list(pod)
                ),
            )
        path = ann.get("prometheus.io/path", "/metrics")
        if path not in run.metrics_paths:
            run.add(
                pod.workload,
                f"{base}[prometheus.io/path]",
                "prometheus-annotations",
                _("{path} is not a metrics path the backend serves ({paths})").format(
                    path=repr(path), paths=", ".join(run.metrics_paths)
                ),
            )
