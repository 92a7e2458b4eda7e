"""Lint rules for objects that must meet: workload selectors and their pod templates, Services
and container ports, StatefulSets and their headless Service and storage, HPA and PDB targets
and replica arithmetic, topology spread, Secret/ConfigMap references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.i18n import _
from lab.lint.base import LintRun, compact, port_list
from lab.manifests import Obj, ident
from lab.pod_templates import Pod, selector_matches


def workload_selectors(run: LintRun) -> None:
    for pod in run.pods:
        selector = pod.workload["spec"].get("selector")
        if pod.workload["kind"] == "Job" and selector is None:
            continue  # the API server generates a Job's selector (unless manualSelector)
        if not selector_matches(selector, pod.labels) or selector == {}:
            run.add(
                pod.workload,
                "spec.selector",
                "selector-matches-template",
                _("selector {selector} does not select the pod template labels {labels}").format(
                    selector=compact(selector), labels=compact(pod.labels)
                ),
            )


def services(run: LintRun) -> None:
    for svc in run.of_kind("Service"):
        selector = svc.get("spec", {}).get("selector")
        if not selector:
            continue
        targets = run.selected(ident(svc)[1], {"matchLabels": selector})
        if not targets:
            run.add(
                svc,
                "spec.selector",
                "service-selects-pods",
                _("selector {selector} matches no pod template in namespace {namespace}").format(
                    selector=compact(selector), namespace=repr(ident(svc)[1])
                ),
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
                run.add(
                    svc,
                    f"spec.ports[{i}].targetPort",
                    "service-target-port",
                    _("{port} is not a container port of {workloads} (ports: {ports})").format(
                        port=repr(target), workloads=", ".join(missing), ports=port_list(targets[0])
                    ),
                )


def statefulset_services(run: LintRun) -> None:
    for sts in run.of_kind("StatefulSet"):
        name = sts["spec"].get("serviceName")
        svc = run.find("Service", ident(sts)[1], name) if name else None
        if svc is None or svc["spec"].get("clusterIP") != "None":
            run.add(
                sts,
                "spec.serviceName",
                "statefulset-headless-service",
                _(
                    "{name} must name a headless Service (clusterIP: None) in the same namespace"
                ).format(name=repr(name)),
            )


def hpa_for(run: LintRun, workload: Obj) -> Obj | None:
    """The HorizontalPodAutoscaler that scales `workload`, if any."""
    kind, namespace, name = ident(workload)
    return next(
        (
            h
            for h in run.of_kind("HorizontalPodAutoscaler")
            if ident(h)[1] == namespace
            and (h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])
            == (kind, name)
        ),
        None,
    )


def min_replicas(run: LintRun, workload: Obj) -> int:
    """The fewest pods `workload` runs: its HPA's minReplicas, else spec.replicas (1)."""
    hpa = hpa_for(run, workload)
    if hpa is not None:
        return int(hpa["spec"].get("minReplicas", 1))
    return int(workload["spec"].get("replicas", 1))


def autoscaling(run: LintRun) -> None:
    for hpa in run.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = run.find(ref["kind"], ident(hpa)[1], ref["name"])
        if target is None:
            run.add(
                hpa,
                "spec.scaleTargetRef",
                "hpa-target",
                _("{kind}/{name} does not exist in namespace {namespace}").format(
                    kind=ref["kind"], name=ref["name"], namespace=repr(ident(hpa)[1])
                ),
            )
        elif "replicas" in target["spec"]:
            run.add(
                target,
                "spec.replicas",
                "hpa-owns-replicas",
                _(
                    "must be left unset: {hpa} owns the replica count, and every apply of "
                    "replicas {replicas} would undo its decision"
                ).format(hpa=ident(hpa)[2], replicas=target["spec"]["replicas"]),
            )
    for pdb in run.of_kind("PodDisruptionBudget"):
        if pdb["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            run.add(
                pdb,
                "spec.unhealthyPodEvictionPolicy",
                "pdb-unhealthy-eviction",
                _(
                    "must be AlwaysAllow: with the default, pods that are running but not ready "
                    "(e.g. while their database is down during a drain) can never be evicted "
                    "and the drain deadlocks"
                ),
            )
        owners = run.selected(ident(pdb)[1], pdb["spec"].get("selector"))
        if len(owners) != 1:
            run.add(
                pdb,
                "spec.selector",
                "pdb-target",
                _(
                    "selector {selector} must select the pods of exactly one workload, selects "
                    "{selected}"
                ).format(
                    selector=compact(pdb["spec"].get("selector")),
                    selected=[p.ref for p in owners],
                ),
            )
            continue
        min_available = pdb["spec"].get("minAvailable")
        floor = min_replicas(run, owners[0].workload)
        if isinstance(min_available, int) and min_available >= floor:
            run.add(
                pdb,
                "spec.minAvailable",
                "pdb-below-replicas",
                _(
                    "minAvailable {min_available} must be below the {floor} replicas "
                    "{workload} runs at least, or no voluntary eviction can ever proceed"
                ).format(min_available=min_available, floor=floor, workload=owners[0].ref),
            )


def topology_spread(run: LintRun) -> None:
    for pod in run.pods:
        if min_replicas(run, pod.workload) < 2:
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
            run.add(
                pod.workload,
                "spec.template.spec.topologySpreadConstraints",
                "topology-spread",
                _(
                    "needs maxSkew 1 on kubernetes.io/hostname with whenUnsatisfiable "
                    "DoNotSchedule, nodeTaintsPolicy Honor and a labelSelector matching its "
                    "pods: otherwise every replica may land on one node (ScheduleAnyway) or "
                    "tainted nodes count as empty domains and replicas stay Pending"
                ),
            )


def statefulset_storage(run: LintRun) -> None:
    for sts in run.of_kind("StatefulSet"):
        claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates") or []}
        spec = sts["spec"]["template"]["spec"]
        for c in spec.get("containers", []):
            mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
            data = next((e.get("value") for e in c.get("env") or [] if e["name"] == "PGDATA"), None)
            on_claim = [
                path
                for name, path in mounts.items()
                if name in claims and (data is None or data.startswith(path))
            ]
            if not on_claim:
                run.add(
                    sts,
                    "spec.volumeClaimTemplates",
                    "statefulset-storage",
                    (
                        _(
                            "container {container} keeps PGDATA {data} on no "
                            "volumeClaimTemplate (claims: {claims}): the data dies with the pod"
                        )
                        if data
                        else _(
                            "container {container} keeps its data on no volumeClaimTemplate "
                            "(claims: {claims}): the data dies with the pod"
                        )
                    ).format(
                        container=repr(c["name"]), data=data, claims=sorted(claims) or _("none")
                    ),
                )


def references(run: LintRun) -> None:
    for pod in run.pods:
        for c in pod.spec.get("containers", []):
            where = f"spec.template.spec.containers[{c['name']}]"
            for i, env in enumerate(c.get("env") or []):
                source = env.get("valueFrom") or {}
                for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if key in source:
                        reference(run, pod, f"{where}.env[{i}].valueFrom.{key}", kind, source[key])
            for i, env_from in enumerate(c.get("envFrom") or []):
                for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if key in env_from:
                        reference(run, pod, f"{where}.envFrom[{i}].{key}", kind, env_from[key])
        for vol in pod.spec.get("volumes") or []:
            for key, kind, name_key in (
                ("configMap", "ConfigMap", "name"),
                ("secret", "Secret", "secretName"),
            ):
                if key in vol:
                    ref = {"name": vol[key].get(name_key), "optional": vol[key].get("optional")}
                    reference(
                        run, pod, f"spec.template.spec.volumes[{vol['name']}].{key}", kind, ref
                    )


def reference(run: LintRun, pod: Pod, field_: str, kind: str, ref: Mapping[str, Any]) -> None:
    if ref.get("optional"):
        return
    target = run.find(kind, pod.namespace, ref.get("name", ""))
    if target is None:
        run.add(
            pod.workload,
            field_,
            "references-exist",
            _("{kind} {name} does not exist in namespace {namespace}").format(
                kind=kind, name=repr(ref.get("name")), namespace=repr(pod.namespace)
            ),
        )
        return
    keys = {*(target.get("data") or {}), *(target.get("stringData") or {})}
    if "key" in ref and ref["key"] not in keys:
        run.add(
            pod.workload,
            field_,
            "references-exist",
            _("{kind} {name} has no key {key} (keys: {keys})").format(
                kind=kind, name=repr(ref["name"]), key=repr(ref["key"]), keys=sorted(keys)
            ),
        )
