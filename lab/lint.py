"""Semantic lint of rendered manifests and a NetworkPolicy evaluator working on pods' labels.

Everything returns data: `lint()` a list of `Finding`s (object, field, rule, message) and
`evaluate_paths()` a list of `Verdict`s (who may talk to whom, and which policy decided), with
`findings_frame()` / `verdicts_frame()` for notebooks. `build()` renders a kustomization.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from lab.errors import LabError, ToolMissingError
from lab.slo import MANIFESTS_DIR

Obj = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
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


class KustomizeError(LabError):
    """`kubectl kustomize` could not render a directory."""


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


def build(directory: Path) -> list[Obj]:
    """Render a kustomization with `kubectl kustomize` and parse its objects."""
    if shutil.which("kubectl") is None:
        raise ToolMissingError("kubectl", "https://kubernetes.io/docs/tasks/tools/")
    proc = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise KustomizeError(
            f"kubectl kustomize {directory} failed:\n{proc.stderr.strip()}",
            "Fix the kustomization named in the message and render again.",
        )
    return parse(proc.stdout)


def kustomizations(kind: str = "Kustomization", root: Path = MANIFESTS_DIR) -> list[Path]:
    """Directories under `root` whose kustomization.yaml declares `kind` (or Component)."""
    return sorted(
        p.parent
        for p in root.rglob("kustomization.yaml")
        if (yaml.safe_load(p.read_text()) or {}).get("kind", "Kustomization") == kind
    )


def parse(text: str) -> list[Obj]:
    """The non-empty YAML documents of a multi-document string."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def ident(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object."""
    meta = obj.get("metadata", {})
    return obj.get("kind", "?"), meta.get("namespace", ""), meta.get("name", "?")


# --- label selectors --------------------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels + matchExpressions) selects `labels`; {} selects all."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


# --- pods (from workload templates) -----------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """The pods a workload creates, as its template describes them."""

    workload: Obj
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]

    @property
    def ref(self) -> str:
        """`Kind/name` of the owning workload."""
        kind, _, name = ident(self.workload)
        return f"{kind}/{name}"

    @property
    def ports(self) -> dict[str, int]:
        """Named container ports (name -> number)."""
        return {
            p["name"]: p["containerPort"]
            for c in self.spec.get("containers", [])
            for p in c.get("ports") or []
            if "name" in p
        }

    @property
    def port_numbers(self) -> set[int]:
        """Every declared container port number."""
        return {
            p["containerPort"]
            for c in self.spec.get("containers", [])
            for p in c.get("ports") or []
        }


def pods(objects: Sequence[Obj]) -> list[Pod]:
    """One `Pod` per workload (Deployment, StatefulSet, ...) in `objects`."""
    out = []
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS:
            meta = obj["spec"].get("template", {}).get("metadata", {})
            out.append(
                Pod(
                    obj,
                    ident(obj)[1],
                    meta.get("labels") or {},
                    meta.get("annotations") or {},
                    obj["spec"]["template"].get("spec", {}),
                )
            )
    return out


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
                resources = c.get("resources") or {}
                for part in ("requests", "limits"):
                    for res in ("cpu", "memory"):
                        if res not in (resources.get(part) or {}):
                            self.add(
                                pod.workload,
                                f"{where}.resources.{part}.{res}",
                                "resources",
                                f"{part}.{res} is missing",
                            )
                image = c.get("image", "")
                if "@sha256:" not in image and (
                    ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
                ):
                    self.add(
                        pod.workload,
                        f"{where}.image",
                        "image-pinned",
                        f"{image!r} must carry a version tag (not latest) or a digest",
                    )

    def probe(self, pod: Pod, c: Mapping[str, Any], where: str, name: str) -> None:
        probe = c.get(name)
        if not probe:
            self.add(pod.workload, f"{where}.{name}", "probes", f"{name} is missing")
            return
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
            if sc.get("readOnlyRootFilesystem") is not True:
                self.add(
                    w,
                    f"{where}.readOnlyRootFilesystem",
                    "read-only-root-filesystem",
                    "must be true; mount an emptyDir where the process writes",
                )
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
    paths: Sequence[Connection] | None = None,
    metrics_paths: Sequence[str] = METRICS_PATHS,
) -> list[Finding]:
    """Every broken rule in `objects`, including NetworkPolicy paths that differ from `paths`
    (default: `lab_paths(objects)`)."""
    findings = _Lint(objects, metrics_paths).run()
    for verdict in evaluate_paths(objects, paths):
        if verdict.expected is not None and verdict.allowed != verdict.expected:
            findings.append(verdict.finding())
    return findings


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as a table (one row each)."""
    columns = ["kind", "namespace", "name", "field", "rule", "message"]
    return pd.DataFrame([asdict(f) for f in findings], columns=columns)


# --- NetworkPolicy evaluation -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace + labels) or an address outside the cluster."""

    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str | None = None


@dataclass(frozen=True)
class Connection:
    """A path to evaluate, with the verdict the lab intends (None: just report it)."""

    source: Endpoint
    target: Endpoint
    port: int
    protocol: str = "TCP"
    expected: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a connection is allowed, and which policies decided each direction."""

    connection: Connection
    egress_allowed: bool
    egress: str
    ingress_allowed: bool
    ingress: str
    deciding: tuple[tuple[str, str, str], ...] = ()  # (namespace, policy, direction)

    @property
    def allowed(self) -> bool:
        """Allowed only when the source may send and the target may receive."""
        return self.egress_allowed and self.ingress_allowed

    @property
    def expected(self) -> bool | None:
        """What the lab intends for this path."""
        return self.connection.expected

    def describe(self) -> str:
        """`source -> target:port/proto` in words."""
        c = self.connection
        return f"{c.source.name} -> {c.target.name}:{c.port}/{c.protocol}"

    def finding(self) -> Finding:
        """A lint finding for a verdict that differs from the intended one."""
        namespace, name, direction = (
            self.deciding[0]
            if self.deciding
            else (self.connection.source.namespace or "", "(none)", "podSelector")
        )
        want = "allowed" if self.expected else "denied"
        got = "allowed" if self.allowed else "denied"
        return Finding(
            "NetworkPolicy",
            name,
            f"spec.{direction}",
            "network-policy-paths",
            f"{self.describe()} must be {want} but is {got} "
            f"(egress: {self.egress}; ingress: {self.ingress})",
            namespace,
        )


def _policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _peer_matches(
    peer: Mapping[str, Any],
    policy_ns: str,
    ep: Endpoint,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    if "ipBlock" in peer:
        if ep.ip is None:
            return False
        address = ipaddress.ip_address(ep.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except") or []
        )
    if ep.namespace is None:
        return False
    if "namespaceSelector" in peer:
        ns_labels = namespaces.get(ep.namespace, {"kubernetes.io/metadata.name": ep.namespace})
        if not selector_matches(peer["namespaceSelector"], ns_labels):
            return False
    elif ep.namespace != policy_ns:
        return False
    return selector_matches(peer.get("podSelector", {}), ep.labels)


def _port_matches(rule_ports: Sequence[Mapping[str, Any]] | None, conn: Connection) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != conn.protocol:
            continue
        port = p.get("port")
        if isinstance(port, str):
            port = conn.target.ports.get(port)
        if port is None and "port" not in p:
            return True
        if port is not None and port <= conn.port <= p.get("endPort", port):
            return True
    return False


def _direction(
    policies: Sequence[Obj],
    namespaces: Mapping[str, Mapping[str, str]],
    conn: Connection,
    egress: bool,
) -> tuple[bool, str, list[str]]:
    """(allowed, explanation, isolating policy names) for one side of a connection."""
    subject, peer = (conn.source, conn.target) if egress else (conn.target, conn.source)
    ptype, rules_key, peers_key = (
        ("Egress", "egress", "to") if egress else ("Ingress", "ingress", "from")
    )
    if subject.namespace is None:
        return True, "outside the cluster", []
    isolating = [
        p
        for p in policies
        if ident(p)[1] == subject.namespace
        and ptype in _policy_types(p)
        and selector_matches(p["spec"].get("podSelector", {}), subject.labels)
    ]
    if not isolating:
        return True, f"no policy isolates {subject.name}", []
    for policy in isolating:
        for i, rule in enumerate(policy["spec"].get(rules_key) or []):
            peers = rule.get(peers_key)
            if (
                not peers
                or any(_peer_matches(pr, ident(policy)[1], peer, namespaces) for pr in peers)
            ) and _port_matches(rule.get("ports"), conn):
                return True, f"allowed by {ident(policy)[2]} {rules_key}[{i}]", [ident(policy)[2]]
    # Name the policies written for this pod before the namespace-wide ones (default deny).
    names = [ident(p)[2] for p in sorted(isolating, key=lambda p: not p["spec"].get("podSelector"))]
    return False, f"no rule of {', '.join(names)} matches", names


def namespace_labels(objects: Sequence[Obj]) -> dict[str, dict[str, str]]:
    """Labels of the Namespaces in `objects`, plus the automatic kubernetes.io/metadata.name."""
    return {
        o["metadata"]["name"]: {
            **(o["metadata"].get("labels") or {}),
            "kubernetes.io/metadata.name": o["metadata"]["name"],
        }
        for o in objects
        if o.get("kind") == "Namespace"
    }


def evaluate(objects: Sequence[Obj], conn: Connection) -> Verdict:
    """Evaluate one connection against the NetworkPolicies in `objects`."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    namespaces = namespace_labels(objects)
    out_ok, out_why, out_pols = _direction(policies, namespaces, conn, egress=True)
    in_ok, in_why, in_pols = _direction(policies, namespaces, conn, egress=False)
    deciding = [(conn.source.namespace or "", p, "egress") for p in out_pols]
    deciding += [(conn.target.namespace or "", p, "ingress") for p in in_pols]
    if not out_ok:  # the side that denied comes first
        deciding.sort(key=lambda d: d[2] != "egress")
    elif not in_ok:
        deciding.sort(key=lambda d: d[2] != "ingress")
    return Verdict(conn, out_ok, out_why, in_ok, in_why, tuple(deciding))


def endpoint(pod: Pod) -> Endpoint:
    """The `Endpoint` of a workload's pods."""
    return Endpoint(ident(pod.workload)[2], pod.namespace, pod.labels, pod.ports)


OTHER_NAMESPACE = Endpoint("pod in namespace other", "other", {"app": "client"})
KUBE_DNS = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
INTERNET = Endpoint("internet (203.0.113.10)", ip="203.0.113.10")


def lab_paths(objects: Sequence[Obj]) -> list[Connection]:
    """The paths the lab intends, for the workloads present in `objects`."""
    eps = {endpoint(p).name: endpoint(p) for p in pods(objects) if p.namespace == "ironclad-demo"}
    wanted: list[tuple[str | Endpoint, str | Endpoint, int, str, bool]] = [
        ("backend", "postgres", 5432, "TCP", True),
        ("backend", KUBE_DNS, 53, "UDP", True),
        ("backend", "postgres", 5433, "TCP", False),
        ("backend", INTERNET, 443, "TCP", False),
        ("backend", "prometheus", 9090, "TCP", False),
        ("backend", "grafana", 3000, "TCP", False),
        (OTHER_NAMESPACE, "backend", 3000, "TCP", True),
        (OTHER_NAMESPACE, "backend", 5432, "TCP", False),
        (OTHER_NAMESPACE, "postgres", 5432, "TCP", False),
        ("prometheus", "backend", 3000, "TCP", True),
        ("prometheus", "postgres", 5432, "TCP", False),
        ("grafana", "prometheus", 9090, "TCP", True),
        ("grafana", "postgres", 5432, "TCP", False),
        ("postgres", INTERNET, 443, "TCP", False),
        ("postgres", "backend", 3000, "TCP", False),
    ]

    def resolve(e: str | Endpoint) -> Endpoint | None:
        return e if isinstance(e, Endpoint) else eps.get(e)

    out = []
    for src, dst, port, proto, expected in wanted:
        s, d = resolve(src), resolve(dst)
        if s is not None and d is not None:
            out.append(Connection(s, d, port, proto, expected))
    return out


def evaluate_paths(
    objects: Sequence[Obj], paths: Sequence[Connection] | None = None
) -> list[Verdict]:
    """Verdicts for `paths` (default: the lab's intended paths)."""
    return [evaluate(objects, c) for c in (lab_paths(objects) if paths is None else paths)]


def verdicts_frame(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Verdicts as a table: source, target, port, protocol, allowed, expected, egress, ingress."""
    return pd.DataFrame(
        [
            {
                "source": v.connection.source.name,
                "target": v.connection.target.name,
                "port": v.connection.port,
                "protocol": v.connection.protocol,
                "allowed": v.allowed,
                "expected": v.expected,
                "egress": v.egress,
                "ingress": v.ingress,
            }
            for v in verdicts
        ],
        columns=[
            "source",
            "target",
            "port",
            "protocol",
            "allowed",
            "expected",
            "egress",
            "ingress",
        ],
    )
