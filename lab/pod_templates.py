"""The pods that rendered workloads create, as their templates describe them (`pods()`), and
label selectors (`selector_matches`): what lint, NetworkPolicy evaluation, the image inventory
and workshop capacity read from the objects `lab.manifests` renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.manifests import Obj, ident

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


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
