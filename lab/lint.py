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

Over 400 lines on purpose: one method per rule in one class, so the rule set reads in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import yaml

from lab.manifests import Obj, Pod, ident, pods, selector_matches
from lab.netpol import (
    INTERNET,
    OTHER_NAMESPACE,
    Connection,
    Endpoint,
    Verdict,
    evaluate,
    evaluate_paths,
    lab_paths,
)

RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})
METRICS_PATHS = ("/metrics",)


@dataclass(frozen=True)
class Finding:
    """One broken rule: which object, which field, which rule, and what is wrong."""

    kind: str
    name: str
    field: str
    rule: str
    message: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} {self.field}: {self.message} [rule: {self.rule}]"


# --- lint rules -------------------------------------------------------------------------------


class _Lint:
    """Runs every rule over one set of objects, collecting findings."""

    def __init__(self, objects: Sequence[Obj], metrics_paths: Sequence[str]) -> None:
        self.objects = objects
        self.pods = pods(objects)
        self.metrics_paths = metrics_paths
        self.findings: list[Finding] = []

    def add(self, obj: Obj, field_: str, rule: str, message: str) -> None:
        kind, namespace, name = ident(obj)
        self.findings.append(Finding(kind, name, field_, rule, message, namespace))

    def of_kind(self, kind: str) -> Iterator[Obj]:
        return (o for o in self.objects if o.get("kind") == kind)

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        return next((o for o in self.of_kind(kind) if ident(o)[1:] == (namespace, name)), None)

    def selected(self, namespace: str, selector: Mapping[str, Any] | None) -> list[Pod]:
        return [
            p
            for p in self.pods
            if p.namespace == namespace and selector_matches(selector, p.labels)
        ]

    def run(self) -> list[Finding]:
        for rule in (
            self.workload_selectors,
            self.services,
            self.statefulset_services,
            self.autoscaling,
            self.topology_spread,
            self.default_deny,
            self.statefulset_storage,
            self.discovery_rbac,
            self.containers,
            self.pod_security,
            self.annotations,
            self.references,
            self.namespaces,
        ):
            rule()
        return self.findings

    def workload_selectors(self) -> None:
        for pod in self.pods:
            selector = pod.workload["spec"].get("selector")
            if not selector_matches(selector, pod.labels) or selector == {}:
                self.add(
                    pod.workload,
                    "spec.selector",
                    "selector-matches-template",
                    f"selector {_compact(selector)} does not select the pod template labels "
                    f"{_compact(pod.labels)}",
                )

    def services(self) -> None:
        for svc in self.of_kind("Service"):
            selector = svc.get("spec", {}).get("selector")
            if not selector:
                continue
            targets = self.selected(ident(svc)[1], {"matchLabels": selector})
            if not targets:
                self.add(
                    svc,
                    "spec.selector",
                    "service-selects-pods",
                    f"selector {_compact(selector)} matches no pod template in namespace "
                    f"{ident(svc)[1]!r}",
                )
            for i, port in enumerate(svc["spec"].get("ports", [])):
                target = port.get("targetPort", port.get("port"))
                missing = [
                    p.ref
                    for p in targets
                    if (
                        target not in p.ports
                        if isinstance(target, str)
                        else target not in p.port_numbers
                    )
                ]
                if missing:
                    self.add(
                        svc,
                        f"spec.ports[{i}].targetPort",
                        "service-target-port",
                        f"{target!r} is not a container port of {', '.join(missing)} "
                        f"(ports: {_ports(targets[0])})",
                    )

    def statefulset_services(self) -> None:
        for sts in self.of_kind("StatefulSet"):
            name = sts["spec"].get("serviceName")
            svc = self.find("Service", ident(sts)[1], name) if name else None
            if svc is None or svc["spec"].get("clusterIP") != "None":
                self.add(
                    sts,
                    "spec.serviceName",
                    "statefulset-headless-service",
                    f"{name!r} must name a headless Service (clusterIP: None) in the "
                    "same namespace",
                )

    def hpa_for(self, workload: Obj) -> Obj | None:
        """The HorizontalPodAutoscaler that scales `workload`, if any."""
        kind, namespace, name = ident(workload)
        return next(
            (
                h
                for h in self.of_kind("HorizontalPodAutoscaler")
                if ident(h)[1] == namespace
                and (h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])
                == (kind, name)
            ),
            None,
        )

    def min_replicas(self, workload: Obj) -> int:
        """The fewest pods `workload` runs: its HPA's minReplicas, else spec.replicas (1)."""
        hpa = self.hpa_for(workload)
        if hpa is not None:
            return int(hpa["spec"].get("minReplicas", 1))
        return int(workload["spec"].get("replicas", 1))

    def autoscaling(self) -> None:
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            ref = hpa["spec"]["scaleTargetRef"]
            target = self.find(ref["kind"], ident(hpa)[1], ref["name"])
            if target is None:
                self.add(
                    hpa,
                    "spec.scaleTargetRef",
                    "hpa-target",
                    f"{ref['kind']}/{ref['name']} does not exist in namespace {ident(hpa)[1]!r}",
                )
            elif "replicas" in target["spec"]:
                self.add(
                    target,
                    "spec.replicas",
                    "hpa-owns-replicas",
                    f"must be left unset: {ident(hpa)[2]} owns the replica count, and every "
                    f"apply of replicas {target['spec']['replicas']} would undo its decision",
                )
        for pdb in self.of_kind("PodDisruptionBudget"):
            if pdb["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
                self.add(
                    pdb,
                    "spec.unhealthyPodEvictionPolicy",
                    "pdb-unhealthy-eviction",
                    "must be AlwaysAllow: with the default, pods that are running but not ready "
                    "(e.g. while their database is down during a drain) can never be evicted "
                    "and the drain deadlocks",
                )
            owners = self.selected(ident(pdb)[1], pdb["spec"].get("selector"))
            if len(owners) != 1:
                self.add(
                    pdb,
                    "spec.selector",
                    "pdb-target",
                    f"selector {_compact(pdb['spec'].get('selector'))} must select the pods "
                    f"of exactly one workload, selects {[p.ref for p in owners]}",
                )
                continue
            min_available = pdb["spec"].get("minAvailable")
            floor = self.min_replicas(owners[0].workload)
            if isinstance(min_available, int) and min_available >= floor:
                self.add(
                    pdb,
                    "spec.minAvailable",
                    "pdb-below-replicas",
                    f"minAvailable {min_available} must be below the {floor} replicas "
                    f"{owners[0].ref} runs at least, or no voluntary eviction can ever proceed",
                )

    def topology_spread(self) -> None:
        for pod in self.pods:
            if self.min_replicas(pod.workload) < 2:
                continue
            hard = [
                c
                for c in pod.spec.get("topologySpreadConstraints") or []
                if c.get("topologyKey") == "kubernetes.io/hostname"
                and c.get("whenUnsatisfiable") == "DoNotSchedule"
                and c.get("nodeTaintsPolicy") == "Honor"
                and c.get("maxSkew") == 1
                and selector_matches(c.get("labelSelector"), pod.labels)
            ]
            if not hard:
                self.add(
                    pod.workload,
                    "spec.template.spec.topologySpreadConstraints",
                    "topology-spread",
                    "needs maxSkew 1 on kubernetes.io/hostname with whenUnsatisfiable "
                    "DoNotSchedule, nodeTaintsPolicy Honor and a labelSelector matching its "
                    "pods: otherwise every replica may land on one node (ScheduleAnyway) or "
                    "tainted nodes count as empty domains and replicas stay Pending",
                )

    def default_deny(self) -> None:
        used = {p.namespace for p in self.pods}
        for namespace in self.of_kind("Namespace"):  # the namespaces these manifests own
            ns = ident(namespace)[2]
            if ns not in used:
                continue
            stranger = Endpoint(f"a new pod in {ns}", ns, {"lint.ironclad/probe": "stranger"})
            for conn in (
                Connection(stranger, INTERNET, 443),
                Connection(OTHER_NAMESPACE, stranger, 8080),
            ):
                verdict = evaluate(self.objects, conn)
                if verdict.allowed:
                    self.add(
                        namespace,
                        "NetworkPolicy",
                        "default-deny",
                        f"{verdict.describe()} is allowed ({verdict.egress}; {verdict.ingress}): "
                        "add a default-deny NetworkPolicy (podSelector {}, policyTypes Ingress "
                        "and Egress, no rules) so pods no other policy names are isolated",
                    )

    def statefulset_storage(self) -> None:
        for sts in self.of_kind("StatefulSet"):
            claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates") or []}
            spec = sts["spec"]["template"]["spec"]
            for c in spec.get("containers", []):
                mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
                data = next(
                    (e.get("value") for e in c.get("env") or [] if e["name"] == "PGDATA"), None
                )
                on_claim = [
                    path
                    for name, path in mounts.items()
                    if name in claims and (data is None or data.startswith(path))
                ]
                if not on_claim:
                    self.add(
                        sts,
                        "spec.volumeClaimTemplates",
                        "statefulset-storage",
                        f"container {c['name']!r} keeps "
                        f"{f'PGDATA {data}' if data else 'its data'} on no volumeClaimTemplate "
                        f"(claims: {sorted(claims) or 'none'}): the data dies with the pod",
                    )

    def prometheus_configs(self, pod: Pod) -> list[dict[str, Any]]:
        """The prometheus.yml files mounted into `pod` from ConfigMaps."""
        configs = []
        for volume in pod.spec.get("volumes") or []:
            name = (volume.get("configMap") or {}).get("name", "")
            cm = self.find("ConfigMap", pod.namespace, name) if name else None
            if cm is not None and "prometheus.yml" in (cm.get("data") or {}):
                configs.append(yaml.safe_load(cm["data"]["prometheus.yml"]))
        return configs

    def discovery_rbac(self) -> None:
        # What each kubernetes_sd role lists and watches (core API group).
        needs = {
            "pod": ["pods"],
            "service": ["services"],
            "endpoints": ["endpoints", "pods", "services"],
        }
        for pod in self.pods:
            sa = pod.spec.get("serviceAccountName", "default")
            for config in self.prometheus_configs(pod):
                for job in config.get("scrape_configs") or []:
                    where = f"prometheus.yml[{job['job_name']}].kubernetes_sd_configs"
                    for sd in job.get("kubernetes_sd_configs") or []:
                        names = (sd.get("namespaces") or {}).get("names")
                        if not names or sd["role"] not in needs:
                            self.add(
                                pod.workload,
                                where,
                                "discovery-rbac",
                                f"role {sd['role']!r} with namespaces {names}: list the "
                                "namespaces to discover (namespaces.names) and use a role of "
                                f"{sorted(needs)}; anything else needs cluster-wide rights",
                            )
                            continue
                        for ns in names:
                            for res in needs[sd["role"]]:
                                self.discovery_grant(pod, sa, ns, res, job["job_name"])

    def discovery_grant(self, pod: Pod, sa: str, ns: str, resource: str, job: str) -> None:
        granted: set[str] = set()
        for kind in ("RoleBinding", "ClusterRoleBinding"):
            for binding in self.of_kind(kind):
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
                role = self.find(ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"])
                for rule in (role or {}).get("rules") or []:
                    if "" in rule.get("apiGroups", []) and resource in rule.get("resources", []):
                        granted |= set(rule.get("verbs", []))
        missing = sorted({"list", "watch"} - granted)
        if missing or pod.spec.get("automountServiceAccountToken") is False:
            self.add(
                pod.workload,
                f"prometheus.yml[{job}].kubernetes_sd_configs",
                "discovery-rbac",
                f"ServiceAccount {sa!r} needs list and watch on {resource} in namespace {ns!r} "
                f"(missing: {missing or 'none'}) and its token mounted "
                f"(automountServiceAccountToken: "
                f"{pod.spec.get('automountServiceAccountToken', True)}); without both, "
                "discovery finds nothing and no target is scraped",
            )

    def containers(self) -> None:
        for pod in self.pods:
            for c in pod.spec.get("containers", []):
                where = f"spec.template.spec.containers[{c['name']}]"
                for probe in ("livenessProbe", "readinessProbe"):
                    self.probe(pod, c, where, probe)

    def probe(self, pod: Pod, c: Mapping[str, Any], where: str, name: str) -> None:
        probe = c.get(name) or {}  # a missing probe is checkov's CKV_K8S_8/9
        action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
        port = action.get("port") if action else None
        names = {p["name"] for p in c.get("ports") or [] if "name" in p}
        numbers = {p["containerPort"] for p in c.get("ports") or []}
        if port is not None and port not in (names if isinstance(port, str) else numbers):
            self.add(
                pod.workload,
                f"{where}.{name}",
                "probes",
                f"probe port {port!r} is not a port of container {c['name']!r}",
            )

    def pod_security(self) -> None:
        for pod in self.pods:
            self.restricted(pod)

    def restricted(self, pod: Pod) -> None:
        spec, w = pod.spec, pod.workload
        psc = spec.get("securityContext") or {}
        rule = "pod-security-restricted"
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                self.add(w, f"spec.template.spec.{key}", rule, f"{key} must not be true")
        for vol in spec.get("volumes") or []:
            kinds = set(vol) - {"name"}
            if not kinds <= RESTRICTED_VOLUME_TYPES:
                self.add(
                    w,
                    f"spec.template.spec.volumes[{vol['name']}]",
                    rule,
                    f"volume type {sorted(kinds - RESTRICTED_VOLUME_TYPES)} is not allowed",
                )
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            where = f"spec.template.spec.containers[{c['name']}].securityContext"
            sc = c.get("securityContext") or {}
            checks: list[tuple[str, bool, str]] = [
                (
                    "runAsNonRoot",
                    sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True,
                    "must be true (at pod or container level)",
                ),
                ("runAsUser", sc.get("runAsUser", psc.get("runAsUser")) != 0, "must not be 0"),
                (
                    "allowPrivilegeEscalation",
                    sc.get("allowPrivilegeEscalation") is False,
                    "must be false",
                ),
                ("privileged", not sc.get("privileged"), "must not be true"),
                (
                    "capabilities.drop",
                    "ALL" in (sc.get("capabilities") or {}).get("drop", []),
                    "must contain ALL",
                ),
                (
                    "capabilities.add",
                    set((sc.get("capabilities") or {}).get("add", [])) <= {"NET_BIND_SERVICE"},
                    "may only add NET_BIND_SERVICE",
                ),
                (
                    "seccompProfile.type",
                    (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
                    in SECCOMP_OK,
                    "must be RuntimeDefault or Localhost (at pod or container level)",
                ),
            ]
            for key, ok, message in checks:
                if not ok:
                    self.add(w, f"{where}.{key}", rule, message)
            if any("hostPort" in p for p in c.get("ports") or []):
                self.add(
                    w,
                    f"spec.template.spec.containers[{c['name']}].ports",
                    rule,
                    "hostPort must not be set",
                )

    def annotations(self) -> None:
        for pod in self.pods:
            ann = pod.annotations
            if ann.get("prometheus.io/scrape") != "true":
                continue
            base = "spec.template.metadata.annotations"
            port = ann.get("prometheus.io/port", "")
            if not port.isdigit() or int(port) not in pod.port_numbers:
                self.add(
                    pod.workload,
                    f"{base}[prometheus.io/port]",
                    "prometheus-annotations",
                    f"{port!r} is not a container port (ports: {_ports(pod)})",
                )
            path = ann.get("prometheus.io/path", "/metrics")
            if path not in self.metrics_paths:
                self.add(
                    pod.workload,
                    f"{base}[prometheus.io/path]",
                    "prometheus-annotations",
                    f"{path!r} is not a metrics path the backend serves "
                    f"({', '.join(self.metrics_paths)})",
                )

    def references(self) -> None:
        for pod in self.pods:
            for c in pod.spec.get("containers", []):
                where = f"spec.template.spec.containers[{c['name']}]"
                for i, env in enumerate(c.get("env") or []):
                    source = env.get("valueFrom") or {}
                    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                        if key in source:
                            self.reference(
                                pod, f"{where}.env[{i}].valueFrom.{key}", kind, source[key]
                            )
                for i, env_from in enumerate(c.get("envFrom") or []):
                    for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                        if key in env_from:
                            self.reference(pod, f"{where}.envFrom[{i}].{key}", kind, env_from[key])
            for vol in pod.spec.get("volumes") or []:
                for key, kind, name_key in (
                    ("configMap", "ConfigMap", "name"),
                    ("secret", "Secret", "secretName"),
                ):
                    if key in vol:
                        ref = {"name": vol[key].get(name_key), "optional": vol[key].get("optional")}
                        self.reference(
                            pod, f"spec.template.spec.volumes[{vol['name']}].{key}", kind, ref
                        )

    def reference(self, pod: Pod, field_: str, kind: str, ref: Mapping[str, Any]) -> None:
        if ref.get("optional"):
            return
        target = self.find(kind, pod.namespace, ref.get("name", ""))
        if target is None:
            self.add(
                pod.workload,
                field_,
                "references-exist",
                f"{kind} {ref.get('name')!r} does not exist in namespace {pod.namespace!r}",
            )
            return
        keys = {*(target.get("data") or {}), *(target.get("stringData") or {})}
        if "key" in ref and ref["key"] not in keys:
            self.add(
                pod.workload,
                field_,
                "references-exist",
                f"{kind} {ref['name']!r} has no key {ref['key']!r} (keys: {sorted(keys)})",
            )

    def namespaces(self) -> None:
        used = {p.namespace for p in self.pods}
        for ns in self.of_kind("Namespace"):
            labels = ns["metadata"].get("labels") or {}
            if (
                ns["metadata"]["name"] in used
                and labels.get("pod-security.kubernetes.io/enforce") != "restricted"
            ):
                self.add(
                    ns,
                    "metadata.labels[pod-security.kubernetes.io/enforce]",
                    "namespace-restricted",
                    "must be 'restricted' where the lab runs pods",
                )


def _compact(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def _ports(pod: Pod) -> str:
    named = ", ".join(f"{k}={v}" for k, v in pod.ports.items())
    return named or ", ".join(map(str, sorted(pod.port_numbers))) or "none"


def lint(
    objects: Sequence[Obj],
    namespace: str,
    paths: Sequence[Connection] | None = None,
    metrics_paths: Sequence[str] = METRICS_PATHS,
) -> list[Finding]:
    """Every broken rule in `objects`, including NetworkPolicy paths that differ from `paths`
    (default: the lab's intended paths in `namespace`, `lab.netpol.lab_paths`)."""
    findings = _Lint(objects, metrics_paths).run()
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
    want = "allowed" if verdict.expected else "denied"
    got = "allowed" if verdict.allowed else "denied"
    return Finding(
        "NetworkPolicy",
        name,
        f"spec.{direction}",
        "network-policy-paths",
        f"{verdict.describe()} must be {want} but is {got} "
        f"(egress: {verdict.egress}; ingress: {verdict.ingress})",
        namespace,
    )
