"""Lint rules for isolation: Pod Security "restricted" as the admission controller defines it,
probes on real ports, a default-deny NetworkPolicy, restricted namespaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.i18n import N_, _
from lab.lint.base import LintRun
from lab.manifests import ident
from lab.netpol import INTERNET, OTHER_NAMESPACE, Connection, Endpoint, evaluate
from lab.pod_templates import Pod

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


def default_deny(run: LintRun) -> None:
    used = {p.namespace for p in run.pods}
    for namespace in run.of_kind("Namespace"):  # the namespaces these manifests own
        ns = ident(namespace)[2]
        if ns not in used:
            continue
        stranger = Endpoint(f"a new pod in {ns}", ns, {"lint.ironclad/probe": "stranger"})
        for conn in (
            Connection(stranger, INTERNET, 443),
            Connection(OTHER_NAMESPACE, stranger, 8080),
        ):
            verdict = evaluate(run.objects, conn)
            if verdict.allowed:
                run.add(
                    namespace,
                    "NetworkPolicy",
                    "default-deny",
                    _(
                        "{path} is allowed ({egress}; {ingress}): add a default-deny "
                        "NetworkPolicy (podSelector {{}}, policyTypes Ingress and Egress, no "
                        "rules) so pods no other policy names are isolated"
                    ).format(
                        path=verdict.describe(), egress=verdict.egress, ingress=verdict.ingress
                    ),
                )


def containers(run: LintRun) -> None:
    for pod in run.pods:
        for c in pod.spec.get("containers", []):
            where = f"spec.template.spec.containers[{c['name']}]"
            for name in ("livenessProbe", "readinessProbe"):
                probe_port(run, pod, c, where, name)


def probe_port(run: LintRun, pod: Pod, c: Mapping[str, Any], where: str, name: str) -> None:
    """The probe `name` of container `c` must name one of its ports."""
    probe = c.get(name) or {}  # a missing probe is checkov's CKV_K8S_8/9
    action = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
    port = action.get("port") if action else None
    names = {p["name"] for p in c.get("ports") or [] if "name" in p}
    numbers = {p["containerPort"] for p in c.get("ports") or []}
    if port is not None and port not in (names if isinstance(port, str) else numbers):
        run.add(
            pod.workload,
            f"{where}.{name}",
            "probes",
            _("probe port {port} is not a port of container {container}").format(
                port=repr(port), container=repr(c["name"])
            ),
        )


def pod_security(run: LintRun) -> None:
    for pod in run.pods:
        restricted(run, pod)


def restricted(run: LintRun, pod: Pod) -> None:
    spec, w = pod.spec, pod.workload
    psc = spec.get("securityContext") or {}
    rule = "pod-security-restricted"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            run.add(
                w, f"spec.template.spec.{key}", rule, _("{key} must not be true").format(key=key)
            )
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            run.add(
                w,
                f"spec.template.spec.volumes[{vol['name']}]",
                rule,
                _("volume type {types} is not allowed").format(
                    types=sorted(kinds - RESTRICTED_VOLUME_TYPES)
                ),
            )
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        where = f"spec.template.spec.containers[{c['name']}].securityContext"
        sc = c.get("securityContext") or {}
        checks: list[tuple[str, bool, str]] = [
            (
                "runAsNonRoot",
                sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True,
                N_("must be true (at pod or container level)"),
            ),
            ("runAsUser", sc.get("runAsUser", psc.get("runAsUser")) != 0, N_("must not be 0")),
            (
                "allowPrivilegeEscalation",
                sc.get("allowPrivilegeEscalation") is False,
                N_("must be false"),
            ),
            ("privileged", not sc.get("privileged"), N_("must not be true")),
            (
                "capabilities.drop",
                "ALL" in (sc.get("capabilities") or {}).get("drop", []),
                N_("must contain ALL"),
            ),
            (
                "capabilities.add",
                set((sc.get("capabilities") or {}).get("add", [])) <= {"NET_BIND_SERVICE"},
                N_("may only add NET_BIND_SERVICE"),
            ),
            (
                "seccompProfile.type",
                (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
                in SECCOMP_OK,
                N_("must be RuntimeDefault or Localhost (at pod or container level)"),
            ),
        ]
        for key, ok, message in checks:
            if not ok:
                run.add(w, f"{where}.{key}", rule, _(message))
        if any("hostPort" in p for p in c.get("ports") or []):
            run.add(
                w,
                f"spec.template.spec.containers[{c['name']}].ports",
                rule,
                _("hostPort must not be set"),
            )


def namespaces(run: LintRun) -> None:
    used = {p.namespace for p in run.pods}
    for ns in run.of_kind("Namespace"):
        labels = ns["metadata"].get("labels") or {}
        if (
            ns["metadata"]["name"] in used
            and labels.get("pod-security.kubernetes.io/enforce") != "restricted"
        ):
            run.add(
                ns,
                "metadata.labels[pod-security.kubernetes.io/enforce]",
                "namespace-restricted",
                _("must be 'restricted' where the lab runs pods"),
            )
