"""The manifests as data: render a kustomization, parse YAML, find objects and their pods.

`render("kind")` is what `lab up --target kind` applies (and `ironclad-lab render` prints);
`render("base")` the application alone. Notebooks use `render` and `find`; `lab.lint` and
`lab.netpol` work on the objects it returns. The manifests are read from the checkout that
`Settings.manifests` names (LAB_REPO_ROOT, else the repository holding this package).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError, ToolMissingError
from lab.settings import Settings, get_settings

Obj = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
# What `render(name)` renders, relative to the manifests directory.
RENDERABLE = {"base": Path("base"), "kind": Path("overlays") / "kind"}


class KustomizeError(LabError):
    """`kubectl kustomize` could not render a directory."""


def render(name: str = "kind", settings: Settings | None = None) -> list[Obj]:
    """The objects of `name` ("kind": what `lab up --target kind` applies; "base": the app)."""
    if name not in RENDERABLE:
        raise LabError(
            f"Nothing to render called {name!r}.", f"Use one of: {', '.join(RENDERABLE)}."
        )
    return build((settings or get_settings()).manifests / RENDERABLE[name])


def to_yaml(objects: Sequence[Obj]) -> str:
    """Objects as one multi-document YAML string (what `kubectl apply -f -` reads)."""
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def find(objects: Sequence[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    """The object of this kind and name (and namespace, when given); KeyError names it if absent."""
    for obj in objects:
        o_kind, o_namespace, o_name = ident(obj)
        if (o_kind, o_name) == (kind, name) and namespace in (None, o_namespace):
            return obj
    raise KeyError(f"no {kind}/{name} among the {len(objects)} rendered objects")


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


def kustomizations(root: Path, kind: str = "Kustomization") -> list[Path]:
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
